"""Celery tasks of the scheduler: each takes ids, re-reads rows and calls the service of its name."""

from __future__ import annotations

import logging

from celery import shared_task

from observatories.archive import ArchiveUnavailable
from observatories.portal.client import PortalUnavailable

from .models import Dispatch, DispatchState
from .services import data as data_services
from .services import dispatch as dispatch_services
from .services import planning, reconcile

logger = logging.getLogger(__name__)


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


@shared_task(bind=True, name="scheduling.dispatch_data_fetch", ignore_result=True, acks_late=True, max_retries=48)
def dispatch_data_fetch_task(self, dispatch_id: int) -> int:
    """Store a completed copy's frames and photometry from its facility's archive; returns how many new frames.

    While the archive has not got every frame yet, or it or the portal is unreachable, retry with
    exponential backoff (1 min doubling to 1 h) until a day after the copy completed
    (``data.DATA_FETCH_GIVE_UP``), then give up with a warning. In a drill (eager) it does not wait.
    """
    try:
        return data_services.dispatch_data_store(dispatch_id=dispatch_id)
    except (data_services.ArchiveNotReady, ArchiveUnavailable, PortalUnavailable) as exc:
        if self.request.is_eager or not data_services.dispatch_data_due(dispatch_id=dispatch_id):
            logger.warning("dispatch %s: giving up on the archive's data: %s", dispatch_id, exc)
            return getattr(exc, "stored", 0)
        raise self.retry(exc=exc, countdown=min(3600, 60 * 2 ** self.request.retries)) from exc


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
