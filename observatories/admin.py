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


@admin.register(FacilityStatus)
class FacilityStatusAdmin(admin.ModelAdmin):
    list_display = ["facility", "state", "reason", "observed_at", "fetched_at"]
    list_filter = ["state"]
