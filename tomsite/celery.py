"""The Celery application: configured from Django settings (CELERY_*), tasks auto-discovered."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _beat_on_start(sender: object, **kwargs: object) -> None:
    """A fresh worker reports itself at once instead of waiting for beat's next heartbeat."""
    app.send_task("tomsite.heartbeat")
