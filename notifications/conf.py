"""The notifications settings, read when needed (never at import), with their defaults.

``BATON_NOTIFICATION_CHANNELS`` maps a channel name to the dotted path of its
:class:`~notifications.channels.NotificationChannel` class; ``BATON_NOTIFICATIONS``
holds the knobs below. tomsite/settings/base.py documents each.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULT_CHANNELS = {
    "email": "notifications.channels.EmailChannel",
    "slack": "notifications.channels.SlackChannel",
    "inbox": "notifications.channels.InboxChannel",
}

DEFAULTS: dict[str, Any] = {
    "DEFAULT_CHANNELS": ["email", "inbox"],
    "URGENT_EVENTS": ["request.failed", "request.expired"],
    "RATE_LIMIT_MESSAGES": 10,
    "RATE_LIMIT_WINDOW_S": 3600,
    "BURST_DIGEST_DELAY_S": 300,
    "DAILY_DIGEST_HOUR": 8,
    "QUIET_HOURS_START": "",
    "QUIET_HOURS_END": "",
    "DEFAULT_TIMEZONE": "UTC",
    "MAX_ATTEMPTS": 20,
    "RETRY_BACKOFF_S": 30,
    "RETRY_BACKOFF_MAX_S": 3600,
    "CELERY_RETRY_MAX_S": 300,
    "SENDING_STALE_S": 900,
    "PENDING_STALE_S": 120,
    "HTTP_TIMEOUT_S": 10,
    "SLACK_DEFAULT_CHANNEL": "",
    "DIGEST_MAX_ITEMS": 50,
}


def setting(name: str) -> Any:
    """One entry of ``BATON_NOTIFICATIONS``, or its default."""
    return getattr(settings, "BATON_NOTIFICATIONS", {}).get(name, DEFAULTS[name])


def channel_paths() -> dict[str, str]:
    """The configured channels: name -> dotted path."""
    return dict(getattr(settings, "BATON_NOTIFICATION_CHANNELS", DEFAULT_CHANNELS))


def base_url() -> str:
    """Where people reach Baton, for links in messages (no trailing slash)."""
    return str(getattr(settings, "BATON_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")
