"""Django admin for `sharing`: destinations (secrets not shown) and the outbox (read-only)."""

from __future__ import annotations

from django.contrib import admin

from .models import Destination, OutboxItem


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "kind", "base_url", "enabled")
    list_filter = ("kind", "enabled")
    exclude = ("token", "password")  # set through the team's sharing page or API; never shown


@admin.register(OutboxItem)
class OutboxItemAdmin(admin.ModelAdmin):
    list_display = ("pk", "destination", "kind", "object_id", "status", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("status", "kind")
    readonly_fields = [f.name for f in OutboxItem._meta.fields]
