"""The errors services raise: bad input (nothing was changed) and a refused action."""

from __future__ import annotations


class PolicyInvalid(ValueError):
    """The input was not acceptable; nothing was changed. ``str(exc)`` says why."""


class PolicyForbidden(PermissionError):
    """The acting user may not do this (e.g. change a policy without being the team's admin)."""


class PolicyConflict(PolicyInvalid):
    """The request is valid but the object's state does not allow it now (e.g. a claim that has ended)."""


class UsageConflict(PolicyInvalid):
    """A usage record reused a ``source_key`` with different values."""
