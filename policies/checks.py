"""System checks of `policies` (stable ids; Django runs them at start-up and in ``manage.py check``).

* ``policies.E001``: a notification channel in ``BATON_POLICIES['NOTIFICATION_CHANNELS']`` does not
  import, or is not a :class:`policies.hooks.NotificationChannel`.
* ``policies.E002``: ``TARGET_PERMISSIONS_ONLY`` is on: TOM would then show every datum of a visible
  target, whatever the owning team's policy says.
* ``policies.E003``: ``BATON_POLICIES['NOTIFY']`` names a delivery hook that does not import.
* ``policies.E004``: ``BATON_POLICIES['RELEASE_HOOK']`` names a release hook that does not import.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string


@register()
def check_notification_channels(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from .documents import notification_channels
    from .hooks import NotificationChannel

    errors = []
    for name, path in notification_channels().items():
        try:
            channel = import_string(path)
        except ImportError as exc:
            errors.append(Error(f"notification channel {name!r}: cannot import {path!r} ({exc})",
                                hint="Fix BATON_POLICIES['NOTIFICATION_CHANNELS'].", id="policies.E001"))
            continue
        if not (isinstance(channel, type) and issubclass(channel, NotificationChannel)):
            errors.append(Error(f"notification channel {name!r}: {path!r} is not a NotificationChannel subclass",
                                hint="Channels subclass policies.hooks.NotificationChannel.", id="policies.E001"))
    return errors


@register()
def check_per_datum_permissions(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if getattr(settings, "TARGET_PERMISSIONS_ONLY", True):
        return [Error("TARGET_PERMISSIONS_ONLY is on: TOM would show every datum of a visible target",
                      hint="Set TARGET_PERMISSIONS_ONLY = False; team policies grant per-datum permissions.",
                      id="policies.E002")]
    return []


@register()
def check_notify_hook(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    path = getattr(settings, "BATON_POLICIES", {}).get("NOTIFY", "")
    if not path:
        return []
    try:
        import_string(path)
    except ImportError as exc:
        return [Error(f"BATON_POLICIES['NOTIFY']: cannot import {path!r} ({exc})",
                      hint="Name a function notify(event, teams, payload, *, now), or leave it empty for the built-in inbox.",
                      id="policies.E003")]
    return []


@register()
def check_release_hook(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    path = getattr(settings, "BATON_POLICIES", {}).get("RELEASE_HOOK", "")
    if not path:
        return []
    try:
        import_string(path)
    except ImportError as exc:
        return [Error(f"BATON_POLICIES['RELEASE_HOOK']: cannot import {path!r} ({exc})",
                      hint="Name a function hook(*, team, now, ownership), e.g. sharing.services.outbox_enqueue_released, "
                           "or leave it empty.", id="policies.E004")]
    return []
