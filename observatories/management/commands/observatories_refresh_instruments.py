"""``manage.py observatories_refresh_instruments [--facility CODE ...]``: instruments as the portals describe them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from observatories.models import Facility
from observatories.portal.facility import speaks_portal_api_path
from observatories.services import facility_instruments_refresh


class Command(BaseCommand):
    help = "Refresh each portal facility's instruments (modes, optical elements, defaults) from its api/instruments/."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--facility", action="append", default=[], help="facility code (repeatable); default: all enabled")

    def handle(self, *args: Any, **options: Any) -> None:
        facilities = Facility.objects.select_related("site").filter(enabled=True)
        if options["facility"]:
            facilities = Facility.objects.select_related("site").filter(code__in=options["facility"])
            missing = set(options["facility"]) - set(facilities.values_list("code", flat=True))
            if missing:
                raise CommandError(f"no such facility: {', '.join(sorted(missing))}")
        failed = 0
        for facility in facilities:
            if not speaks_portal_api_path(facility.adapter):
                continue
            try:
                changed = facility_instruments_refresh(facility=facility)
            except Exception as exc:  # noqa: BLE001 - reported per facility; the others still refresh
                failed += 1
                self.stderr.write(f"{facility.code}: {exc}")
                continue
            self.stdout.write(f"{facility.code}: {len(changed)} instrument(s) updated {' '.join(changed)}".rstrip())
        if failed:
            raise CommandError(f"{failed} facilit{'y' if failed == 1 else 'ies'} could not be refreshed")
