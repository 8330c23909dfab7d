"""Celery tasks of `sharing`: push one outbox row; the pump (beat, every minute).

Each takes ids, re-reads the rows and calls the service of its name; each is idempotent
(status guards under row locks), so acks_late, redelivery and a doubled enqueue are safe.
Retries are not Celery's: the row's ``next_attempt_at`` holds the backoff and the pump
re-drives it, so losing Redis loses no item.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(bind=True, name="sharing.outbox_item_deliver", ignore_result=True, acks_late=True, max_retries=8)
def outbox_item_deliver_task(self: Any, item_id: int) -> str:
    """Push one outbox row to its destination."""
    try:
        return services.outbox_item_deliver(item_id=item_id).status
    except OperationalError as exc:  # the database blinked: try again soon, a few times
        raise self.retry(exc=exc, countdown=min(300, 5 * 2 ** self.request.retries)) from exc


@shared_task(name="sharing.outbox_due", ignore_result=True, acks_late=True)
def outbox_due_task() -> dict[str, int]:
    """Re-drive due retries, lost tasks and sends a dead worker left."""
    return services.outbox_due()
