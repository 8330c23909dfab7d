"""The project's own app: the health probe, the Celery bridge for django-tasks, demo data."""

from django.apps import AppConfig


class TomsiteConfig(AppConfig):
    name = "tomsite"
    verbose_name = "Baton"
    default_auto_field = "django.db.models.BigAutoField"
