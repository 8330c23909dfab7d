"""The Celery application: configured from Django settings (CELERY_*), tasks auto-discovered."""

import os

from celery import Celery
from celery.signals import task_prerun, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _beat_on_start(sender: object, **kwargs: object) -> None:
    """A fresh worker reports itself at once instead of waiting for beat's next heartbeat."""
    app.send_task("tomsite.heartbeat")


if os.environ.get("BATON_WORKER_FRESH_CACHES"):
    # The test harness flushes the database between tests under one long-lived worker;
    # content types (and with them permissions) get new ids, so the worker must not cache them.
    @task_prerun.connect
    def _fresh_caches(**kwargs: object) -> None:
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()
