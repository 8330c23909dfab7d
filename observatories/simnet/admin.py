"""Admin pages of the simulated network (for drills: weather overrides, downtime, faults, requests)."""

from django.contrib import admin

from .models import (
    SimClock,
    SimDowntime,
    SimFault,
    SimObservation,
    SimRequest,
    SimRequestGroup,
    SimWeatherOverride,
)

admin.site.register(SimClock)
admin.site.register(SimWeatherOverride, list_display=["site", "state", "start", "end"])
admin.site.register(SimDowntime, list_display=["facility", "reason", "start", "end"])
admin.site.register(SimFault, list_display=["kind", "method", "path_prefix", "remaining", "delay_s"])
admin.site.register(SimRequestGroup, list_display=["id", "name", "state", "created"])
admin.site.register(SimRequest, list_display=["id", "group", "facility", "state"])
admin.site.register(SimObservation, list_display=["id", "request", "facility", "start", "end", "state"])
