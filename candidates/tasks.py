"""Celery tasks of `candidates`: each takes ids, re-reads rows and calls the service of its name."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from candidates import hooks, services

# A deadlock or a dropped connection is transient: retry with backoff. Everything else fails loudly.
_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
    "ignore_result": True,
}


@shared_task(name="candidates.batch_process", **_RETRY)
def batch_process_task(batch_id: str) -> None:
    services.batch_process(batch_id=batch_id)


@shared_task(name="candidates.batches_reconcile", ignore_result=True)
def batches_reconcile_task() -> int:
    """Beat: re-enqueue batches left unprocessed by a lost message or a dead worker."""
    return len(services.batches_reconcile())


@shared_task(name="candidates.trigger_fire", **_RETRY)
def trigger_fire_task(firing_id: int) -> None:
    services.trigger_fire(firing_id=firing_id)


@shared_task(name="candidates.trigger_evaluate", **_RETRY)
def trigger_evaluate_task(rule_id: int, target_ids: list[int]) -> None:
    services.trigger_evaluate(rule_id=rule_id, target_ids=target_ids)


@shared_task(name="candidates.matches_notify", **_RETRY)
def matches_notify_task(match_ids: list[int]) -> None:
    hooks.matches_notify(match_ids=match_ids)


@shared_task(name="candidates.broker_polls_due", ignore_result=True)
def broker_polls_due_task() -> int:
    """Beat: enqueue every enabled broker poll that is due."""
    from candidates.polling import broker_polls_due

    polls = broker_polls_due()
    for poll_id in polls:
        broker_poll_run_task.delay(poll_id)
    return len(polls)


@shared_task(name="candidates.broker_poll_run", **_RETRY)
def broker_poll_run_task(poll_id: int) -> None:
    from candidates.polling import broker_poll_run

    broker_poll_run(poll_id=poll_id)
