"""Django app configuration for `observatories`: TOM integration points and system checks."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ObservatoriesConfig(AppConfig):
    name = "observatories"
    verbose_name = "Observatories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from observatories import checks  # noqa: F401  (registers the system checks)

    def observation_facilities(self) -> list[dict[str, Any]]:
        """TOM's integration point: the "Baton" facility (every portal-driven facility of the network)."""
        return [{"class": "observatories.adapters.PortalFacility"}]

    def nav_items(self) -> list[dict[str, Any]]:
        """TOM's navbar integration point: a link to the network page."""
        return [{"partial": "observatories/partials/navbar_network.html"}]

    def target_detail_tabs(self) -> list[dict[str, Any]]:
        """TOM's target page integration point: the target's visibility over the network tonight."""
        return [
            {
                "partial": "observatories/partials/target_visibility_tab.html",
                "context": "observatories.views.target_visibility_tab_context",
                "label": "Network visibility",
            }
        ]
