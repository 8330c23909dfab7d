"""Demo data of the facility network: the default network (idempotent), and a first status poll soon after start."""

from __future__ import annotations

from typing import TextIO

# Seconds after the demo load at which the first status poll runs: by then ``baton.py run`` has
# started the web server that serves the simulated network (beat's own first poll comes later).
FIRST_POLL_DELAY_S = 15


def load(*, stdout: TextIO) -> None:
    """Load or update the default network from ``data/default_network.json`` and schedule a first status poll."""
    from django.db import transaction

    from observatories.services import network_load_default
    from observatories.tasks import facility_status_poll

    result = network_load_default()
    stdout.write(
        f"  default network: {result.sites} sites, {result.facilities} facilities, {result.instruments} instruments "
        f"({result.created} created, {result.updated} updated)\n"
    )
    transaction.on_commit(lambda: _first_poll(facility_status_poll))


def _first_poll(task: object) -> None:
    try:
        task.apply_async(countdown=FIRST_POLL_DELAY_S)  # type: ignore[attr-defined]  # a Celery task
    except Exception:  # noqa: BLE001 - no broker: beat polls later anyway; the demo data is what matters here
        return
