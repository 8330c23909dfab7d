"""Celery tasks of the scheduler: each takes ids, re-reads rows and calls the service of its name."""

from __future__ import annotations

from celery import shared_task

from observatories.adapters import PortalUnavailable

from .models import Dispatch, DispatchState
from .services import dispatch as dispatch_services
from .services import planning, reconcile


def _retrying(name: str):
    """A task that retries transient facility trouble with capped exponential backoff; anything else fails loudly."""
    return shared_task(
        name=name, autoretry_for=(PortalUnavailable,), retry_backoff=5, retry_backoff_max=600, retry_jitter=True,
        max_retries=10, acks_late=True, ignore_result=True,
    )


@shared_task(name="scheduling.network_plan", ignore_result=True, acks_late=True)
def network_plan_task(request_ids: list[int] | None = None) -> int:
    """Plan open requests (all, or those named); returns how many were planned."""
    return len(planning.network_plan(request_ids=request_ids))


@_retrying("scheduling.dispatch_submit")
def dispatch_submit_task(dispatch_id: int) -> None:
    dispatch_services.dispatch_submit(dispatch_id=dispatch_id)


@_retrying("scheduling.dispatch_poll")
def dispatch_poll_task(dispatch_id: int) -> None:
    dispatch_services.dispatch_poll(dispatch_id=dispatch_id)


@_retrying("scheduling.dispatch_cancel_remote")
def dispatch_cancel_remote_task(dispatch_id: int) -> None:
    dispatch_services.dispatch_cancel_remote(dispatch_id=dispatch_id)


@shared_task(name="scheduling.dispatches_poll", ignore_result=True)
def dispatches_poll_task() -> int:
    """Beat: poll every copy the facilities hold (one task each)."""
    ids = list(
        Dispatch.objects.filter(
            state__in=[DispatchState.SUBMITTED, DispatchState.PENDING, DispatchState.IN_PROGRESS]
        ).values_list("pk", flat=True)
    )
    for pk in ids:
        dispatch_poll_task.delay(pk)
    return len(ids)


@shared_task(name="scheduling.reconcile", ignore_result=True)
def scheduling_reconcile_task() -> dict[str, int]:
    """Beat: re-drive lost work, expire windows, advance cadences, re-plan."""
    return reconcile.scheduling_reconcile()
