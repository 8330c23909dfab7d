"""Celery tasks of `notifications`: deliver one outbox row; the pump (beat, every minute).

Each takes ids, re-reads the rows and calls the service of its name; each is
idempotent (status guards under row locks), so acks_late, redelivery and a
doubled enqueue are safe. The database holds the truth: a retry Celery forgets
is re-driven by the pump from ``next_attempt_at``.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from . import conf, services


@shared_task(bind=True, name="notifications.notification_deliver", ignore_result=True, acks_late=True, max_retries=None)
def notification_deliver_task(self: Any, notification_id: int) -> str:
    """Send one row; a transient failure is retried after the service's backoff (short ones by Celery, long ones by the pump)."""
    try:
        outcome = services.notification_deliver(notification_id=notification_id)
    except OperationalError as exc:  # the database blinked: try again soon, a few times
        if self.request.retries >= 8:
            raise
        raise self.retry(exc=exc, countdown=min(300, 5 * 2 ** self.request.retries)) from exc
    # Countdowns longer than the broker's visibility timeout would be redelivered early: leave those to the pump.
    # An eager run (tests, a shell) would retry at once, ignoring the countdown: leave it to the pump.
    if (outcome.retry_in is not None and outcome.retry_in <= float(conf.setting("CELERY_RETRY_MAX_S"))
            and not self.request.is_eager):
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="notifications.outbox_due", ignore_result=True, acks_late=True)
def outbox_due_task() -> dict[str, int]:
    """Release held rows, flush due digests, re-drive due retries and lost tasks."""
    return services.outbox_due()
