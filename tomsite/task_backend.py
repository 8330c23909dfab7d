"""A django-tasks backend that hands TOM Toolkit's background tasks to Celery.

TOM Toolkit 3 enqueues its background work (data-service queries, for
example) through django-tasks. Its default backend runs them inline, inside
the web request; this one sends them to the Celery worker instead, after the
surrounding transaction commits, so Baton has one engine and one queue.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.task import ResultStatus, Task, TaskResult
from django_tasks.utils import get_random_id


class CeleryTaskBackend(BaseTaskBackend):
    """Enqueue django-tasks as ``tomsite.run_django_task`` Celery messages.

    Results are not kept (``supports_get_result`` is False): Baton records the
    outcome of its work in the database, and TOM checks this flag before asking.
    """

    supports_defer = True
    supports_async_task = False
    supports_get_result = False

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        result: TaskResult = TaskResult(
            task=task,
            id=get_random_id(),
            status=ResultStatus.NEW,
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
        )
        send = partial(self._send, task, list(args), dict(kwargs))
        if self._get_enqueue_on_commit_for_task(task) is not False:
            transaction.on_commit(send)
        else:
            send()
        return result

    @staticmethod
    def _send(task: Task, args: list[Any], kwargs: dict[str, Any]) -> None:
        from .tasks import run_django_task

        options: dict[str, Any] = {"priority": max(0, min(9, task.priority // 11))}
        if task.run_after is not None:
            options["eta"] = task.run_after
        run_django_task.apply_async(args=(task.module_path, args, kwargs), **options)
