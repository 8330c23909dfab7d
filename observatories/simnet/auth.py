"""The simulator's API token: ``SIMNET_TOKEN``, or one derived from ``SECRET_KEY`` when that is unset."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def simnet_token() -> str:
    """The token every ``/sim/`` call must carry (``Authorization: Token <token>``).

    Derived from SECRET_KEY when SIMNET_TOKEN is empty, so a deployment has a
    private token without configuring one, and the web process, the worker and
    the simulated facilities' adapters all agree on it.
    """
    configured = getattr(settings, "SIMNET_TOKEN", "")
    if configured:
        return str(configured)
    return hmac.new(settings.SECRET_KEY.encode(), b"baton-simnet-token", hashlib.sha256).hexdigest()[:40]


def simnet_token_ok(header: str) -> bool:
    """Whether an ``Authorization`` header carries the simulator's token."""
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "token" and hmac.compare_digest(token.strip(), simnet_token())
