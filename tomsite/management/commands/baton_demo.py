"""Load Baton's demo data: every installed app's ``demo.load`` in app order (idempotent)."""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Load the demo data of every Baton app (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        for config in apps.get_app_configs():
            try:
                module = import_module(f"{config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
                continue
            self.stdout.write(f"{config.verbose_name}:")
            with transaction.atomic():
                module.load(stdout=self.stdout)
