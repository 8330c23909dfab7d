"""The audit trail: every policy decision, with the policy version that made it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import models

from .. import clock
from ..models import PolicyDecision


def decision_record(
    *, action: str, decision: str, team: Group | int | None = None, policy_version_id: int | None = None,
    user: Any = None, obj: models.Model | None = None, object_type: str = "", object_id: str | int = "",
    reason: str = "", detail: dict[str, Any] | None = None, now: datetime | None = None,
) -> PolicyDecision:
    """Record one policy decision (a refused read, a trigger, a claim conflict, a notification, ...)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    return PolicyDecision.objects.create(
        at=now or clock.now(),
        team_id=team if isinstance(team, int) or team is None else team.pk,
        policy_version_id=policy_version_id,
        user=user if getattr(user, "is_authenticated", False) else None,
        action=action,
        decision=decision,
        object_type=object_type,
        object_id=str(object_id),
        reason=reason,
        detail=detail or {},
    )
