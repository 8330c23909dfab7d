"""The sharing settings (``BATON_SHARING``), read when needed (never at import), with their defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "MAX_ATTEMPTS": 20,  # then an item is marked failed (visible, retried by hand)
    "RETRY_BACKOFF_S": 30.0,  # doubling per attempt ...
    "RETRY_BACKOFF_MAX_S": 3600.0,  # ... up to this
    "HTTP_TIMEOUT_S": 10.0,  # every outbound HTTP call
    "SENDING_STALE_S": 900,  # a send older than this was lost with its worker: taken back
    "PENDING_STALE_S": 120,  # a pending item no worker took this long after it was queued: enqueued again
}


def setting(name: str) -> Any:
    """One entry of ``BATON_SHARING``, or its default."""
    return getattr(settings, "BATON_SHARING", {}).get(name, DEFAULTS[name])
