"""``manage.py candidates_index_targets``: index existing TOM targets for cone matching."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from candidates.services import target_sky_backfill


class Command(BaseCommand):
    help = "Add every sidereal TOM target without a cone-match index row to the index."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"indexed {target_sky_backfill()} targets")
