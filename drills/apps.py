"""Django app configuration for `drills`: rehearsals of a campaign on the simulated network."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class DrillsConfig(AppConfig):
    name = "drills"
    verbose_name = "Drills"
    default_auto_field = "django.db.models.BigAutoField"

    def nav_items(self) -> list[dict[str, Any]]:
        """TOM's navbar integration point: the drills page."""
        return [{"partial": "drills/partials/navbar_drills.html"}]
