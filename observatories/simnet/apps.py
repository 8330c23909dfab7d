"""Django app configuration for the simulated network (label ``simnet``)."""

from django.apps import AppConfig


class SimnetConfig(AppConfig):
    name = "observatories.simnet"
    label = "simnet"
    verbose_name = "Simulated network"
    default_auto_field = "django.db.models.BigAutoField"
