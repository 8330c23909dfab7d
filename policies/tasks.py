"""Celery tasks of `policies` (beat): expire claims, release data, reconcile permissions.

Each calls the service of its name; each is idempotent (status guards and
per-row markers), so a redelivered or doubled run changes nothing.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import services


@shared_task(name="policies.claims_expire_due", ignore_result=True, acks_late=True)
def claims_expire_due_task() -> int:
    """Expire claims past their expiry; returns how many."""
    return services.claims_expire_due()


@shared_task(name="policies.data_release_due", ignore_result=True, acks_late=True)
def data_release_due_task() -> dict[str, dict[str, int]]:
    """Grant data whose proprietary period has ended to the network or the public."""
    return services.data_release_due()


@shared_task(name="policies.grants_reconcile", ignore_result=True, acks_late=True)
def grants_reconcile_task() -> dict[str, Any]:
    """Re-project every policy onto TOM's permissions and repair the audience groups."""
    return services.grants_reconcile()
