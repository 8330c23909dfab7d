"""The engine: tasks run in a real worker process, only after their transaction commits."""

from __future__ import annotations

import os
import time
import uuid

import psutil
import pytest
from django.core.cache import cache
from django.db import transaction

from tomsite.tasks import heartbeat, heartbeat_key

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(key: str, timeout: float = 30.0) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cache.get(key)
        if value is not None:
            return value
        time.sleep(0.05)
    return None


def test_task_enqueued_on_commit_runs_in_the_worker_process(celery_worker_process):
    token = uuid.uuid4().hex
    with transaction.atomic():
        heartbeat.delay_on_commit(token)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
        # Not sent yet: the transaction is still open.
        assert cache.get(heartbeat_key(token)) is None
    beat = wait_for(heartbeat_key(token))
    assert beat is not None
    assert beat["pid"] != os.getpid()
    worker = psutil.Process(celery_worker_process.proc.pid)
    assert beat["pid"] in {worker.pid, *(child.pid for child in worker.children(recursive=True))}


def test_task_enqueued_in_a_rolled_back_transaction_never_runs(celery_worker_process):
    rolled_back, committed = uuid.uuid4().hex, uuid.uuid4().hex

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        heartbeat.delay_on_commit(rolled_back)  # type: ignore[attr-defined]
        raise Rollback
    # A task sent after it on the same single-process FIFO queue: once it has run,
    # the rolled-back one would have run before it, had it ever been sent.
    with transaction.atomic():
        heartbeat.delay_on_commit(committed)  # type: ignore[attr-defined]
    assert wait_for(heartbeat_key(committed)) is not None
    assert cache.get(heartbeat_key(rolled_back)) is None


def test_tom_django_tasks_run_in_the_worker_not_inline(celery_worker_process):
    from tests.tomsite.probe_tasks import record_pid

    token = uuid.uuid4().hex
    with transaction.atomic():
        record_pid.enqueue(token)
        assert cache.get(f"probe:{token}") is None
    pid = wait_for(f"probe:{token}")
    assert pid is not None
    assert pid != os.getpid()
