"""Django app configuration for the scheduler (label ``scheduling``)."""

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "observatories.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def nav_items(self) -> list[dict[str, str]]:
        return [{"partial": "scheduling/partials/navbar_link.html"}]
