"""Django app configuration for `notifications`: system checks and the navbar's inbox link."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications import checks  # noqa: F401  (registers the system checks)

    def nav_items(self) -> list[dict[str, Any]]:
        """TOM's navbar integration point: the inbox, with the unread count."""
        return [{"partial": "notifications/partials/navbar.html", "position": "right"}]
