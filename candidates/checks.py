"""System checks of `candidates` (ids ``candidates.E0xx``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

_HOOKS = ("BATON_TRIGGER_REQUEST_FACTORY", "BATON_CANDIDATES_MATCH_HOOK")


@register()
def check_candidates_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """candidates.E001: a hook path that does not import; E002: a match radius outside (0, 10] arcsec."""
    errors: list[Error] = []
    for name in _HOOKS:
        path = getattr(settings, name, "")
        if not path:
            continue
        try:
            hook = import_string(path)
        except ImportError as exc:
            errors.append(Error(f"{name}={path!r} cannot be imported: {exc}", id="candidates.E001"))
            continue
        if not callable(hook):
            errors.append(Error(f"{name}={path!r} is not callable", id="candidates.E001"))
    radius = getattr(settings, "BATON_CANDIDATES_MATCH_RADIUS_ARCSEC", 1.5)
    if not 0 < float(radius) <= 10:
        errors.append(
            Error(
                f"BATON_CANDIDATES_MATCH_RADIUS_ARCSEC={radius} is outside (0, 10]",
                hint="the HEALPix index (order 13, 8 neighbours) covers cones up to 10 arcsec",
                id="candidates.E002",
            )
        )
    return errors
