"""Celery task of the simulated network: the periodic tick that observes due requests in the running demo."""

from __future__ import annotations

from celery import shared_task

from observatories.simnet.services import sim_tick


@shared_task(name="simnet.tick", ignore_result=True, acks_late=True)
def simnet_tick() -> dict[str, int]:
    """Decide every simulated observation that has ended by simulated now (idempotent: each is decided once)."""
    result = sim_tick()
    return {"completed": result.completed, "failed": result.failed}
