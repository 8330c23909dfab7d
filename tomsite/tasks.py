"""Project-wide Celery tasks: the worker heartbeat and the bridge that runs TOM's django-tasks."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone
from django.utils.module_loading import import_string

HEARTBEAT_KEY = "worker-heartbeat"


def heartbeat_key(token: str) -> str:
    """The cache key under which the heartbeat carrying ``token`` is recorded."""
    return f"{HEARTBEAT_KEY}:{token}"


@shared_task(name="tomsite.heartbeat", ignore_result=True)
def heartbeat(token: str | None = None) -> dict[str, Any]:
    """Record that a worker is alive (beat runs it every minute; the health page reads it).

    With ``token``, the beat is also stored under that token, so a caller can tell
    that this very message was executed, and by which process.
    """
    beat = {"at": timezone.now().isoformat(), "pid": os.getpid(), "host": socket.gethostname()}
    cache.set(HEARTBEAT_KEY, beat, timeout=None)
    if token:
        cache.set(heartbeat_key(token), beat, timeout=3600)
    return beat


@shared_task(name="tomsite.run_django_task", ignore_result=True, acks_late=True)
def run_django_task(module_path: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Run one django-tasks task (TOM Toolkit's background work) inside a Celery worker."""
    task = import_string(module_path)
    task.call(*args, **kwargs)
