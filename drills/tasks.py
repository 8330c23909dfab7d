"""Celery tasks of `drills`: each takes ids, re-reads the drill and calls the service of its name (idempotent)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="drills.drill_start", ignore_result=True, acks_late=True)
def drill_start_task(drill_id: int) -> None:
    services.drill_start(drill_id=drill_id)


@shared_task(name="drills.drill_step", ignore_result=True, acks_late=True)
def drill_step_task(drill_id: int, step: int) -> None:
    services.drill_step(drill_id=drill_id, step=step)


@shared_task(name="drills.drill_finish", ignore_result=True, acks_late=True)
def drill_finish_task(drill_id: int) -> None:
    services.drill_finish(drill_id=drill_id)


@shared_task(name="drills.start_due", ignore_result=True)
def drills_start_due_task() -> list[int]:
    """Beat: start scheduled drills whose time has come."""
    return services.drills_start_due()
