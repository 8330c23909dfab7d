"""Django app configuration for `sharing`."""

from __future__ import annotations

from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    verbose_name = "Sharing out"
    default_auto_field = "django.db.models.BigAutoField"
