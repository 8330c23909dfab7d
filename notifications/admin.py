"""Admin of `notifications`: the outbox (filter by status to see failures; retry them), preferences, team Slack."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Notification, Preference, TeamSlack


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "event", "digest_kind", "channel", "address", "recipient", "status", "attempts",
                    "next_attempt_at", "sent_at", "last_error"]
    list_filter = ["status", "channel", "digest_kind", "urgent", "event"]
    search_fields = ["address", "event", "dedupe_key", "recipient__username", "last_error"]
    date_hierarchy = "created_at"
    raw_id_fields = ["recipient", "team", "digest"]
    actions = ["retry_failed"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The outbox is a record: it changes through the services, not by hand.
        return [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send the selected failed notifications again")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = services.notifications_retry(notification_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "timezone", "quiet_start", "quiet_end", "digest", "email_enabled", "slack_enabled", "updated_at"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]


@admin.register(TeamSlack)
class TeamSlackAdmin(admin.ModelAdmin):
    list_display = ["team", "channel", "updated_at"]
    raw_id_fields = ["team"]
