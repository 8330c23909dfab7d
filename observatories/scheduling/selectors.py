"""Reading requests and dispatches: who may see which, and what the night plan holds."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet

from . import hooks
from .models import Dispatch, ObservingRequest


def requests_visible_to(*, user) -> QuerySet[ObservingRequest]:
    """Requests a user may see, as the teams' policies share them (hook ``requests_visible``): their own teams',
    and other teams' whose ``requests`` sharing rule shows them (all, for a superuser)."""
    qs = ObservingRequest.objects.select_related("target", "team", "requester")
    if not user.is_authenticated:
        return qs.none()
    if user.is_superuser:
        return qs
    q = hooks.requests_visible_q(user=user)
    return qs.filter(q) if q is not None else qs.filter(team__in=user.groups.all())


def night_plan(*, user, start: datetime, hours: float = 24.0) -> QuerySet[Dispatch]:
    """Dispatches (any state) whose chance overlaps [start, start + hours], for requests the user may see."""
    end = start + timedelta(hours=hours)
    return (
        Dispatch.objects.filter(request__in=requests_visible_to(user=user), window_start__lt=end, window_end__gt=start)
        .select_related("facility__site", "request__target")
        .order_by("facility__site__code", "facility__code", "window_start")
    )
