"""Django app configuration for `observatories`."""

from django.apps import AppConfig


class ObservatoriesConfig(AppConfig):
    name = "observatories"
    default_auto_field = "django.db.models.BigAutoField"
