"""Changing a person's notification preferences and a team's Slack destination."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.apps import apps
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from ..events import catalogue
from ..models import Digest, Preference, TeamSlack
from ..selectors import preference_for
from .notify import NotificationInvalid

FIELDS = ("timezone", "quiet_start", "quiet_end", "digest", "digest_hour", "email_enabled", "slack_enabled",
          "muted_events", "slack_webhook_url", "slack_member_id")
SLACK_MEMBER = re.compile(r"^[UW][A-Z0-9]{2,30}$")


class NotificationForbidden(PermissionError):
    """The person may not make this change."""


def _webhook(value: Any, field: str) -> str:
    value = (value or "").strip()
    if value:
        try:
            URLValidator(schemes=["https", "http"])(value)
        except ValidationError as exc:
            raise NotificationInvalid(f"{field}: not an http(s) URL") from exc
        if len(value) > 500:
            raise NotificationInvalid(f"{field}: at most 500 characters")
    return value


def preference_clean(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validated preference changes (a partial update); raises NotificationInvalid naming the field."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise NotificationInvalid(f"{unknown[0]}: not a preference")
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "timezone":
            value = (value or "").strip()
            try:
                if value:
                    ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise NotificationInvalid(f"timezone: unknown time zone {value!r}") from exc
        elif name in ("quiet_start", "quiet_end"):
            if value not in (None, "") and not isinstance(value, time):
                raise NotificationInvalid(f"{name}: a time of day or nothing")
            value = value or None
        elif name == "digest":
            if value not in Digest.values:
                raise NotificationInvalid(f"digest: one of {', '.join(Digest.values)}")
        elif name == "digest_hour":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23):
                raise NotificationInvalid("digest_hour: a whole hour from 0 to 23, or nothing")
        elif name in ("email_enabled", "slack_enabled"):
            if not isinstance(value, bool):
                raise NotificationInvalid(f"{name}: true or false")
        elif name == "muted_events":
            known = catalogue()
            if not isinstance(value, list | tuple) or not all(isinstance(e, str) and e in known for e in value):
                raise NotificationInvalid("muted_events: a list of known event names")
            value = sorted(set(value))
        elif name == "slack_webhook_url":
            value = _webhook(value, name)
        elif name == "slack_member_id":
            value = (value or "").strip()
            if value and not SLACK_MEMBER.match(value):
                raise NotificationInvalid("slack_member_id: a Slack member id such as U024BE7LH")
        clean[name] = value
    return clean


def preference_update(*, user: Any, changes: Mapping[str, Any], now: datetime | None = None) -> Preference:
    """Apply ``changes`` (any of :data:`FIELDS`) to the person's preferences; all or nothing."""
    clean = preference_clean(changes)
    with transaction.atomic():
        preference = preference_for(user=user)
        if preference.pk is not None:
            preference = Preference.objects.select_for_update().get(pk=preference.pk)
        for name, value in clean.items():
            setattr(preference, name, value)
        start, end = preference.quiet_start, preference.quiet_end
        if (start is None) != (end is None):
            raise NotificationInvalid("quiet_end: quiet hours need both a start and an end")
        preference.updated_at = now or timezone.now()
        preference.save()
    return preference


def _may_edit_team(user: Any, team: Group) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    if apps.is_installed("policies"):
        from policies.selectors import team_is_admin, team_of

        policies_team = team_of(group=team)
        if policies_team is not None:
            return team_is_admin(user=user, team=policies_team)
    return bool(getattr(user, "is_staff", False))


def team_slack_set(*, team: Group, by: Any, webhook_url: str = "", channel: str = "", now: datetime | None = None) -> TeamSlack:
    """Set where the team's Slack notifications go. Only the team's admins (or staff for plain groups) may."""
    if not _may_edit_team(by, team):
        raise NotificationForbidden("only the team's admins may set its Slack destination")
    webhook_url = _webhook(webhook_url, "webhook_url")
    channel = (channel or "").strip()
    if len(channel) > 80:
        raise NotificationInvalid("channel: at most 80 characters")
    team_slack, _ = TeamSlack.objects.update_or_create(
        team=team, defaults={"webhook_url": webhook_url, "channel": channel, "updated_at": now or timezone.now()})
    return team_slack
