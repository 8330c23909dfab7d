"""State changes of requests and dispatches: checked, under a row lock, recorded.

Every change of state in Baton goes through these two functions. They lock
the row (``SELECT ... FOR UPDATE``), check the move against the transition
tables in ``models``, write the new state and a transition record in the
same transaction, and treat a move to the state a row is already in as a
no-op, so retried tasks are harmless. A dispatch's change is mirrored onto
its TOM ``ObservationRecord`` through TOM's ``observation_change_state`` hook,
so TOM's own pages stay true.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..models import (
    DISPATCH_TERMINAL,
    DISPATCH_TRANSITIONS,
    REQUEST_TRANSITIONS,
    Dispatch,
    DispatchTransition,
    ObservingRequest,
    RequestTransition,
)


class IllegalTransition(Exception):
    """A state change the state machine does not allow (e.g. completed -> pending)."""


def request_transition(
    *, request_id: int, to: str, reason: str = "", actor: str = "baton", now: datetime | None = None
) -> tuple[ObservingRequest, bool]:
    """Move a request to state ``to``; returns (request, changed).

    Raises IllegalTransition when the move is not allowed from its current
    state. A move to the current state changes nothing and returns changed=False.
    """
    now = now or timezone.now()
    with transaction.atomic():
        request = ObservingRequest.objects.select_for_update().get(pk=request_id)
        if request.state == to:
            return request, False
        if to not in REQUEST_TRANSITIONS[request.state]:
            raise IllegalTransition(f"request {request_id}: {request.state} -> {to} is not allowed")
        RequestTransition.objects.create(
            request=request, from_state=request.state, to_state=to, reason=reason[:500], actor=actor[:100], at=now
        )
        request.state = to
        request.save(update_fields=["state", "updated_at"])
    return request, True


# Dispatch states as TOM's ObservationRecord status strings (LCO's vocabulary, which TOM knows).
TOM_STATUS = {
    "queued": "PENDING",
    "submitted": "PENDING",
    "pending": "PENDING",
    "in_progress": "IN_PROGRESS",
    "completed": "COMPLETED",
    "failed_weather": "FAILED",
    "failed_other": "FAILED",
    "cancelled": "CANCELED",
    "expired": "WINDOW_EXPIRED",
}


def dispatch_transition(
    *, dispatch_id: int, to: str, reason: str = "", now: datetime | None = None, **fields: object
) -> tuple[Dispatch, bool]:
    """Move a dispatch to state ``to``, setting ``fields`` on it too; returns (dispatch, changed).

    Raises IllegalTransition when the move is not allowed. Mirrors the new
    status onto the linked TOM ObservationRecord and runs TOM's hook.
    """
    now = now or timezone.now()
    with transaction.atomic():
        dispatch = Dispatch.objects.select_for_update().get(pk=dispatch_id)
        if dispatch.state == to:
            return dispatch, False
        if to not in DISPATCH_TRANSITIONS[dispatch.state]:
            raise IllegalTransition(f"dispatch {dispatch_id}: {dispatch.state} -> {to} is not allowed")
        DispatchTransition.objects.create(
            dispatch=dispatch, from_state=dispatch.state, to_state=to, reason=reason[:500], at=now
        )
        dispatch.state = to
        if reason:
            dispatch.reason = reason[:500]
        if to in DISPATCH_TERMINAL:
            dispatch.finished_at = now
        for name, value in fields.items():
            setattr(dispatch, name, value)
        dispatch.save()
        record = dispatch.observation_record
        if record is not None:
            previous = record.status
            record.status = TOM_STATUS[to]
            record.save(update_fields=["status", "modified"])
            transaction.on_commit(lambda: _tom_hook(record, previous))
    return dispatch, True


def _tom_hook(record: object, previous: str) -> None:
    from tom_common.hooks import run_hook

    run_hook("observation_change_state", record, previous)
