"""Admin pages of the facility network."""

from django.contrib import admin

from .models import Facility, FacilityStatus, Instrument, Site


class InstrumentInline(admin.TabularInline):
    model = Instrument
    extra = 0


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "continent", "latitude_deg", "longitude_deg", "clear_fraction"]


@admin.register(Facility)
class FacilityAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "site", "telescope_class", "enabled", "simulated", "adapter"]
    list_filter = ["enabled", "simulated", "site"]
    inlines = [InstrumentInline]
    actions = ["refresh_instruments"]

    @admin.action(description="Refresh instruments from the facility's portal (api/instruments/)")
    def refresh_instruments(self, request, queryset):  # type: ignore[no-untyped-def]
        from django.contrib import messages

        from observatories.services import facility_instruments_refresh

        for facility in queryset.select_related("site"):
            try:
                changed = facility_instruments_refresh(facility=facility)
            except Exception as exc:  # noqa: BLE001 - reported to the admin, per facility
                self.message_user(request, f"{facility.code}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{facility.code}: {len(changed)} instrument(s) updated {changed or ''}")


@admin.register(FacilityStatus)
class FacilityStatusAdmin(admin.ModelAdmin):
    list_display = ["facility", "state", "reason", "observed_at", "fetched_at"]
    list_filter = ["state"]
