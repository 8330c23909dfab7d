"""System checks of `notifications` (stable ids; run at start-up and by ``manage.py check``).

* ``notifications.E001``: a channel in ``BATON_NOTIFICATION_CHANNELS`` does not import, or is
  not a :class:`notifications.channels.NotificationChannel` subclass.
* ``notifications.E002``: a ``BATON_NOTIFICATIONS`` value is out of range or unknown (a time
  zone, a quiet-hours time, a default channel that is not configured, a stale-send timeout
  shorter than the task time limit).
* ``notifications.W001``: team policies may name a channel (``BATON_POLICIES['NOTIFICATION_CHANNELS']``)
  that is not configured here: notifications on it would never be delivered.
"""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string

from . import conf


@register()
def check_channels(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from .channels import NotificationChannel

    errors = []
    paths = conf.channel_paths()
    if not isinstance(paths, dict):
        return [Error("BATON_NOTIFICATION_CHANNELS must map channel names to dotted paths", id="notifications.E001")]
    for name, path in paths.items():
        try:
            channel = import_string(path)
        except ImportError as exc:
            errors.append(Error(f"notification channel {name!r}: cannot import {path!r} ({exc})",
                                hint="Fix BATON_NOTIFICATION_CHANNELS.", id="notifications.E001"))
            continue
        if not (isinstance(channel, type) and issubclass(channel, NotificationChannel)):
            errors.append(Error(f"notification channel {name!r}: {path!r} is not a NotificationChannel subclass",
                                hint="Channels subclass notifications.channels.NotificationChannel.", id="notifications.E001"))
    return errors


def _positive_int(name: str) -> Error | None:
    value = conf.setting(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return Error(f"BATON_NOTIFICATIONS[{name!r}] must be a positive whole number, not {value!r}", id="notifications.E002")
    return None


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = [e for name in ("RATE_LIMIT_MESSAGES", "RATE_LIMIT_WINDOW_S", "BURST_DIGEST_DELAY_S", "MAX_ATTEMPTS",
                             "RETRY_BACKOFF_S", "RETRY_BACKOFF_MAX_S", "CELERY_RETRY_MAX_S", "SENDING_STALE_S",
                             "PENDING_STALE_S", "HTTP_TIMEOUT_S", "DIGEST_MAX_ITEMS")
              if (e := _positive_int(name)) is not None]

    def bad(message: str) -> None:
        errors.append(Error(message, id="notifications.E002"))

    hour = conf.setting("DAILY_DIGEST_HOUR")
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        bad(f"BATON_NOTIFICATIONS['DAILY_DIGEST_HOUR'] must be 0..23, not {hour!r}")
    try:
        ZoneInfo(str(conf.setting("DEFAULT_TIMEZONE")))
    except (ZoneInfoNotFoundError, ValueError):
        bad(f"BATON_NOTIFICATIONS['DEFAULT_TIMEZONE']: unknown time zone {conf.setting('DEFAULT_TIMEZONE')!r}")
    quiet = [conf.setting("QUIET_HOURS_START"), conf.setting("QUIET_HOURS_END")]
    for name, value in zip(("QUIET_HOURS_START", "QUIET_HOURS_END"), quiet, strict=True):
        try:
            if value:
                time.fromisoformat(value)
        except (TypeError, ValueError):
            bad(f"BATON_NOTIFICATIONS[{name!r}] must be HH:MM or empty, not {value!r}")
    if bool(quiet[0]) != bool(quiet[1]):
        bad("BATON_NOTIFICATIONS: set both QUIET_HOURS_START and QUIET_HOURS_END, or neither")
    paths = conf.channel_paths()
    missing = sorted(set(conf.setting("DEFAULT_CHANNELS")) - set(paths if isinstance(paths, dict) else ()))
    if missing:
        bad(f"BATON_NOTIFICATIONS['DEFAULT_CHANNELS'] names unconfigured channel(s): {', '.join(missing)}")
    limit = getattr(settings, "CELERY_TASK_TIME_LIMIT", None)
    stale = conf.setting("SENDING_STALE_S")
    if isinstance(limit, int | float) and isinstance(stale, int) and stale <= limit:
        bad(f"BATON_NOTIFICATIONS['SENDING_STALE_S'] ({stale}) must exceed CELERY_TASK_TIME_LIMIT ({limit}), "
            "or a slow send would be taken for a lost one and sent twice")
    return errors


@register()
def check_policy_channels(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    policy_channels = getattr(settings, "BATON_POLICIES", {}).get("NOTIFICATION_CHANNELS", {})
    paths = conf.channel_paths()
    missing = sorted(set(policy_channels) - set(paths if isinstance(paths, dict) else ()))
    if missing:
        return [Warning(f"team policies may name channel(s) {', '.join(missing)}, which BATON_NOTIFICATION_CHANNELS lacks",
                        hint="Add them to BATON_NOTIFICATION_CHANNELS, or remove them from the policies' list.",
                        id="notifications.W001")]
    return []
