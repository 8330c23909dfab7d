"""Celery tasks of the facility network: the facility-status poll (beat) and its per-facility refresh."""

from __future__ import annotations

from celery import shared_task

from observatories.models import Facility
from observatories.services import facility_status_prune, facility_status_refresh


@shared_task(name="observatories.facility_status_poll", ignore_result=True, acks_late=True)
def facility_status_poll() -> int:
    """Fan out one refresh per enabled facility and prune old status rows; return how many were sent."""
    ids = list(Facility.objects.filter(enabled=True).values_list("pk", flat=True))
    for pk in ids:
        facility_status_refresh_task.delay_on_commit(pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    facility_status_prune()
    return len(ids)


@shared_task(name="observatories.facility_status_refresh", ignore_result=True, acks_late=True, soft_time_limit=100, time_limit=120)
def facility_status_refresh_task(facility_id: int) -> str | None:
    """Refresh one facility's status from its adapter (idempotent: it records what the portal says now)."""
    facility = Facility.objects.select_related("site").filter(pk=facility_id, enabled=True).first()
    if facility is None:
        return None
    return facility_status_refresh(facility=facility).state
