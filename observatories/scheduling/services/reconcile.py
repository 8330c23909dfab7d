"""The reconciler: re-drives whatever a lost message, a dead worker or a flushed Redis left behind (submissions,
expiries, cadences, plans, and cancels the facility has not confirmed).

The database is the source of truth. Every few minutes this looks for work
that should be in flight and is not, and enqueues it again; every task it
enqueues is idempotent, so a message that was not lost after all does no harm.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..models import DISPATCH_LIVE, Dispatch, DispatchState, ObservingRequest, RequestState
from .dispatch import dispatch_cancel, dispatches_withdraw_owed, requests_expire
from .lifecycle import request_transition

QUEUED_GRACE = timedelta(minutes=2)


def cadence_advance(*, now: datetime | None = None) -> list[int]:
    """Move cadence requests whose current visit's slice is over to their next visit (a missed visit)."""
    now = now or timezone.now()
    moved = []
    for request in ObservingRequest.objects.filter(
        state__in=[RequestState.PENDING, RequestState.PLANNED, RequestState.DISPATCHED], cadence_visits__gt=1,
        window_end__gt=now,
    ):
        _, visit_end = request.visit_window()
        if visit_end > now or request.visit + 1 >= request.cadence_visits:
            continue
        with transaction.atomic():
            locked = ObservingRequest.objects.select_for_update().get(pk=request.pk)
            if locked.visit != request.visit:
                continue
            for dispatch in Dispatch.objects.filter(request=locked, visit=locked.visit, state__in=DISPATCH_LIVE):
                dispatch_cancel(dispatch_id=dispatch.pk, reason="visit slice over", now=now)
            locked.visit += 1
            locked.visits_missed += 1
            locked.save(update_fields=["visit", "visits_missed", "updated_at"])
            request_transition(request_id=locked.pk, to=RequestState.PENDING, now=now,
                               reason=f"visit {locked.visit} missed; on to visit {locked.visit + 1}")
        moved.append(request.pk)
    return moved


def scheduling_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue stuck submissions, expire finished windows, advance cadences, re-plan.

    Returns counts of what it did, for the log and the tests.
    """
    from ..tasks import dispatch_submit_task, network_plan_task

    now = now or timezone.now()
    stuck = list(
        Dispatch.objects.filter(state=DispatchState.QUEUED, created_at__lte=now - QUEUED_GRACE).values_list("pk", flat=True)
    )
    for pk in stuck:
        dispatch_submit_task.delay(pk)
    expired = requests_expire(now=now)
    advanced = cadence_advance(now=now)
    withdrawn = dispatches_withdraw_owed(now=now)
    network_plan_task.delay()
    return {"resubmitted": len(stuck), "expired": len(expired), "advanced": len(advanced), "withdrawals": len(withdrawn)}
