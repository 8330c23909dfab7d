"""Reads: a person's preferences (with the site defaults), their notifications, the outbox at a glance."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, Q, QuerySet

from . import conf
from .models import Notification, Preference, Status
from .rules import QuietWindow

# What a person sees of their own outbox: never what the policy door suppressed, nor open digests' guts.
VISIBLE_TO_RECIPIENT = ~Q(status=Status.SUPPRESSED)


def _time_or_none(value: str) -> time | None:
    try:
        return time.fromisoformat(value) if value else None
    except ValueError:
        return None


def preference_for(*, user: Any) -> Preference:
    """The person's preferences; an unsaved row with the site defaults when they have none."""
    found = Preference.objects.filter(user_id=user.pk).first()
    if found is not None:
        return found
    return Preference(user_id=user.pk, quiet_start=_time_or_none(conf.setting("QUIET_HOURS_START")),
                      quiet_end=_time_or_none(conf.setting("QUIET_HOURS_END")))


def preferences_for(*, user_ids: list[int]) -> dict[int, Preference]:
    """:func:`preference_for` for many people in one query."""
    found = {p.user_id: p for p in Preference.objects.filter(user_id__in=user_ids)}
    defaults = (_time_or_none(conf.setting("QUIET_HOURS_START")), _time_or_none(conf.setting("QUIET_HOURS_END")))
    return {pk: found.get(pk) or Preference(user_id=pk, quiet_start=defaults[0], quiet_end=defaults[1]) for pk in user_ids}


def timezone_of(preference: Preference) -> str:
    """The person's IANA time zone (the site default when unset or unknown)."""
    for name in (preference.timezone, conf.setting("DEFAULT_TIMEZONE"), "UTC"):
        try:
            if name:
                ZoneInfo(name)
                return str(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


def quiet_window_of(preference: Preference) -> QuietWindow | None:
    """The person's quiet hours in their time zone, or None."""
    if preference.quiet_start is None or preference.quiet_end is None or preference.quiet_start == preference.quiet_end:
        return None
    return QuietWindow(start=preference.quiet_start, end=preference.quiet_end, timezone=timezone_of(preference))


def quiet_until(*, preference: Preference, now: datetime) -> datetime | None:
    """When the person's quiet hours end, if ``now`` is inside them."""
    window = quiet_window_of(preference)
    if window is None or not window.contains(now):
        return None
    return window.ends_after(now)


def notifications_for(*, user: Any, channel: str | None = "inbox", status: str | None = None, unread: bool | None = None,
                      event: str | None = None) -> QuerySet[Notification]:
    """The person's notifications, newest first (the inbox by default; ``channel=None``: every channel)."""
    qs = Notification.objects.filter(VISIBLE_TO_RECIPIENT, recipient_id=user.pk).select_related("team")
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    if unread is not None:
        qs = qs.filter(read_at__isnull=unread)
    if event:
        qs = qs.filter(event=event)
    return qs.order_by("-created_at", "-pk")


def deliveries_for(*, user: Any, limit: int = 50) -> QuerySet[Notification]:
    """The person's email and Slack deliveries (not the inbox), newest first: what went out and what failed."""
    return (Notification.objects.filter(VISIBLE_TO_RECIPIENT, recipient_id=user.pk).exclude(channel="inbox")
            .select_related("digest").order_by("-created_at", "-pk")[:limit])


def inbox_unread_count(*, user: Any) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(recipient_id=user.pk, channel="inbox", status=Status.SENT, read_at__isnull=True).count()


def outbox_summary() -> dict[str, Any]:
    """Rows per channel and status, and the latest permanent failures (for staff)."""
    counts: dict[str, dict[str, int]] = {}
    for row in Notification.objects.values("channel", "status").annotate(n=Count("pk")).order_by("channel", "status"):
        counts.setdefault(row["channel"], {})[row["status"]] = row["n"]
    failures = list(Notification.objects.filter(status=Status.FAILED).order_by("-last_attempt_at", "-pk")[:20])
    return {"counts": counts, "failures": failures}


def rules_overview(*, user: Any) -> list[dict[str, Any]]:
    """For each of the person's teams, the rules that name them: events, channels, conditions, timing."""
    from django.apps import apps

    overview: list[dict[str, Any]] = []
    groups = list(user.groups.order_by("name")) if getattr(user, "is_authenticated", False) else []
    policy_teams: dict[int, Any] = {}
    if apps.is_installed("policies") and groups:
        from policies.models import Team

        policy_teams = {t.group_id: t for t in Team.objects.filter(group__in=groups).select_related("group")}
    for group in groups:
        team = policy_teams.get(group.pk)
        if team is None:
            overview.append({"team": group.name, "rules": [], "default": f"every event, on {', '.join(conf.setting('DEFAULT_CHANNELS'))}"})
            continue
        from policies.notifications import rule_recipients
        from policies.selectors import policies_in_force

        policy = policies_in_force().get(group.pk)
        rules = []
        for rule in policy.document.notifications if policy else ():
            if any(u.pk == user.pk for u in rule_recipients(team=team, rule=rule)):
                rules.append({"event": rule.event, "channels": list(rule.channels),
                              "conditions": [f"{c.field} {c.op} {c.value}" for c in rule.conditions],
                              "quiet": (f"{rule.quiet_hours.start:%H:%M}–{rule.quiet_hours.end:%H:%M} {rule.quiet_hours.timezone} "
                                        f"({rule.quiet_action})") if rule.quiet_hours else "",
                              "digest": rule.digest})
        overview.append({"team": group.name, "rules": rules,
                         "default": "events without a rule: the team's admins, in the inbox"})
    return overview
