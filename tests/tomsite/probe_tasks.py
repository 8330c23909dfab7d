"""A django-tasks task for the tests: proves TOM-style background tasks reach the Celery worker."""

import os

from django.core.cache import cache
from django_tasks import task


@task
def record_pid(token: str) -> None:
    cache.set(f"probe:{token}", os.getpid(), timeout=600)
