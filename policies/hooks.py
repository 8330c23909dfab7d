"""The notification hook: ``notify(event, teams, payload)`` applies each team's rules and the door.

With ``BATON_POLICIES['NOTIFY']`` set to a dotted path (the notifications app's
``notifications.adapters.policies_notify``), :func:`notify` hands every event to
it and records what it made in the audit trail. Without it, the built-in
:func:`inbox_notify` decides here: notifications land in ``InboxNotification``
rows (the web inbox is a channel of its own and is delivered at once); other
channels (email, Slack) are handed to the channel classes named in
``BATON_POLICIES['NOTIFICATION_CHANNELS']``, which only log them and leave them
pending. Either way every notification sent, held or suppressed is recorded as
a ``PolicyDecision`` with the policy version that decided it.

The scheduler's hook (``BATON_SCHEDULING_HOOKS['notify']``) is
:func:`scheduling_notify`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.module_loading import import_string

from . import clock
from .documents import notification_channels
from .models import InboxNotification, NotificationStatus, PolicyDecision
from .notifications import notification_allowed, notification_rules_for, rule_recipients
from .selectors import policies_in_force, policies_setting, team_of
from .services.audit import decision_record

logger = logging.getLogger(__name__)


class NotificationChannel:
    """A way of delivering notifications. Subclasses override :meth:`deliver`."""

    name = ""

    def deliver(self, notification: InboxNotification) -> bool:
        """Deliver one pending notification; return True when it was delivered (it is then marked so)."""
        raise NotImplementedError


class InboxChannel(NotificationChannel):
    """The web inbox: storing the row is the delivery."""

    name = "inbox"

    def deliver(self, notification: InboxNotification) -> bool:
        return True


class LogChannel(NotificationChannel):
    """A placeholder for channels the notifications app will deliver: logs, leaves the row pending."""

    name = "log"

    def deliver(self, notification: InboxNotification) -> bool:
        logger.info("notification %s for %s on %s: %s (left pending)", notification.event, notification.recipient_id,
                    notification.channel, notification.payload)
        return False


def channel_for(name: str) -> NotificationChannel:
    """The channel object configured under ``name`` (system check policies.E001 vets the paths)."""
    return import_string(notification_channels()[name])()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def notify(event: str, teams: Iterable[Group], payload: Mapping[str, Any], *, now: datetime | None = None) -> list[Any]:
    """Tell ``teams`` about ``event`` (claims, policy changes, breaches, allocations, data) and return what was made.

    Delegates to the hook named in ``BATON_POLICIES['NOTIFY']`` when set (its notifications
    are recorded in the audit trail here), else to :func:`inbox_notify`.
    """
    path = str(policies_setting("NOTIFY", "") or "")
    if not path:
        return inbox_notify(event, teams, payload, now=now)
    now = now or clock.now()
    made = list(import_string(path)(event, list(teams), payload, now=now) or [])
    for notification in made:
        status = str(getattr(notification, "status", ""))
        decision_record(action=PolicyDecision.Action.NOTIFY, decision="suppressed" if status == "suppressed" else "sent",
                        team=getattr(notification, "team_id", None), policy_version_id=getattr(notification, "policy_version_id", None),
                        user=getattr(notification, "recipient", None), object_type="event", object_id=event,
                        reason=str(getattr(notification, "rule", "")) or f"delivered by {path}",
                        detail={"channel": str(getattr(notification, "channel", "")), "status": status}, now=now)
    return made


def inbox_notify(event: str, teams: Iterable[Group], payload: Mapping[str, Any], *, now: datetime | None = None) -> list[InboxNotification]:
    """The built-in delivery: each team's rules choose recipients and channels; the door vets each.

    Quiet hours hold a notification until they end (or put it in the digest, or drop it, as
    the rule says); an urgent payload (``"urgent": true``) may bypass them. Returns the
    notifications created.
    """
    now = now or clock.now()
    body = _jsonable(dict(payload))
    created: list[InboxNotification] = []
    policies = policies_in_force()
    with transaction.atomic():
        for group in {g.pk: g for g in teams}.values():
            team = team_of(group=group)
            policy = policies.get(group.pk)
            if team is None or policy is None:
                continue
            for index, rule in notification_rules_for(team=team, event=event):
                if not rule.matches(body):
                    decision_record(action=PolicyDecision.Action.NOTIFY, decision="suppressed", team=group,
                                    policy_version_id=policy.version_id, object_type="event", object_id=event,
                                    reason=f"rule {index}: conditions not met", detail={"payload": body}, now=now)
                    continue
                for recipient in rule_recipients(team=team, rule=rule):
                    created += _notify_one(event=event, group=group, version_id=policy.version_id, index=index, rule=rule,
                                           recipient=recipient, body=body, now=now)
    for notification in created:
        if notification.status == NotificationStatus.PENDING and channel_for(notification.channel).deliver(notification):
            InboxNotification.objects.filter(pk=notification.pk).update(status=NotificationStatus.DELIVERED)
            notification.status = NotificationStatus.DELIVERED
    return created


def _notify_one(*, event: str, group: Group, version_id: int | None, index: int | None, rule: Any, recipient: Any,
                body: dict[str, Any], now: datetime) -> list[InboxNotification]:
    allowed = notification_allowed(recipient=recipient, event=event, payload=body, now=now)
    if not allowed:
        decision_record(action=PolicyDecision.Action.NOTIFY, decision="suppressed", team=allowed.team_id or group,
                        policy_version_id=allowed.policy_version_id or version_id, user=recipient, object_type="event",
                        object_id=event, reason=allowed.reason, detail={"payload": body, "rule": index}, now=now)
        return []
    status, deliver_after = NotificationStatus.PENDING, None
    if rule.is_quiet(now, body):
        if rule.quiet_action == "drop":
            decision_record(action=PolicyDecision.Action.NOTIFY, decision="suppressed", team=group, policy_version_id=version_id,
                            user=recipient, object_type="event", object_id=event, reason="quiet hours (dropped)",
                            detail={"payload": body, "rule": index}, now=now)
            return []
        if rule.quiet_action == "hold":
            status, deliver_after = NotificationStatus.HELD, rule.quiet_hours.ends_after(now)
        else:
            status = NotificationStatus.DIGEST
    elif rule.digest != "immediate":
        status = NotificationStatus.DIGEST
    decision = decision_record(
        action=PolicyDecision.Action.NOTIFY, decision="sent" if status == NotificationStatus.PENDING else status,
        team=group, policy_version_id=version_id, user=recipient, object_type="event", object_id=event,
        reason=f"rule {index if index is not None else 'default'} on {', '.join(rule.channels)}",
        detail={"payload": body, "rule": index}, now=now,
    )
    return [
        InboxNotification.objects.create(
            recipient=recipient, team=group, event=event, channel=channel, payload=body, status=status, rule_index=index,
            deliver_after=deliver_after, digest=rule.digest if status == NotificationStatus.DIGEST else "",
            decision=decision, created_at=now,
        )
        for channel in rule.channels
    ]


def scheduling_notify(*, event: str, request: Any, **payload: Any) -> None:
    """The scheduler's notify hook: announce a request's lifecycle event to its team, through the door."""
    notify(
        event,
        [request.team],
        {
            **payload,
            "request_id": request.pk,
            "target_id": request.target_id,
            "request": {"team_id": request.team_id, "created_at": request.created_at},
        },
    )
