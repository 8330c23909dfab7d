"""Admin pages of `candidates`: brokers, batches, candidates, filters, regions, rules, polls."""

from __future__ import annotations

from django.contrib import admin

from candidates import models


@admin.register(models.Broker)
class BrokerAdmin(admin.ModelAdmin):
    list_display = ("name", "user")


@admin.register(models.AlertBatch)
class AlertBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "broker", "status", "received_at", "n_received", "n_stored", "n_rejected")
    list_filter = ("source", "status")
    exclude = ("body",)
    readonly_fields = ("errors",)


@admin.register(models.Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ("broker", "alert_id", "object_id", "target", "time", "band", "mag")
    list_filter = ("broker", "band")
    search_fields = ("alert_id", "object_id")
    raw_id_fields = ("target", "batch")


class FilterVersionInline(admin.TabularInline):
    model = models.StreamFilterVersion
    extra = 0
    readonly_fields = ("version", "predicates", "created_by", "created_at")


@admin.register(models.StreamFilter)
class StreamFilterAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "owner", "active")
    inlines = [FilterVersionInline]


@admin.register(models.WatchRegion)
class WatchRegionAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "team", "owner", "version", "area", "active")
    readonly_fields = ("version", "area")


@admin.register(models.TriggerRule)
class TriggerRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "kind", "filter", "region", "min_priority", "active")


@admin.register(models.TriggerFiring)
class TriggerFiringAdmin(admin.ModelAdmin):
    list_display = ("rule", "target", "status", "priority", "cadence", "created_at", "request_ref")
    raw_id_fields = ("target", "candidate", "match")


@admin.register(models.TeamRequestDefaults)
class TeamRequestDefaultsAdmin(admin.ModelAdmin):
    list_display = ("team",)


@admin.register(models.BrokerPoll)
class BrokerPollAdmin(admin.ModelAdmin):
    list_display = ("query", "enabled", "every", "last_run_at", "last_count", "last_error")
