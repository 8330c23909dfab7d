"""Baton's Django project: settings, URLs, the Celery app and the devstack that starts it all."""

from .celery import app as celery_app

__all__ = ["celery_app"]
