"""Services of `notifications`: functions that change things (keyword-only, typed, ``<entity>_<action>``)."""

from .delivery import (
    DeliveryOutcome,
    backoff_s,
    digests_flush_due,
    held_release_due,
    notification_deliver,
    notification_mark_read,
    notifications_mark_all_read,
    notifications_retry,
    outbox_due,
    retries_redrive_due,
)
from .notify import (
    EventSpec,
    NotificationInvalid,
    dedupe_key_derived,
    notify_event,
    notify_events,
    open_digest_for,
)
from .preferences import NotificationForbidden, preference_clean, preference_update, team_slack_set

__all__ = [
    "DeliveryOutcome",
    "EventSpec",
    "NotificationForbidden",
    "NotificationInvalid",
    "backoff_s",
    "dedupe_key_derived",
    "digests_flush_due",
    "held_release_due",
    "notification_deliver",
    "notification_mark_read",
    "notifications_mark_all_read",
    "notifications_retry",
    "notify_event",
    "notify_events",
    "open_digest_for",
    "outbox_due",
    "preference_clean",
    "preference_update",
    "retries_redrive_due",
    "team_slack_set",
]
