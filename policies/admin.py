"""Django admin for `policies`: teams and roles; read-only views of versions, ownership, ledger and the audit trail.

Policy versions are immutable and made only by ``policy_update`` (the team's
admins, in Baton's pages or API), so the admin shows them read-only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    Claim,
    ClaimConflict,
    DataOwnership,
    InboxNotification,
    LedgerEntry,
    PolicyDecision,
    PolicyVersion,
    Team,
    TeamRole,
    UsageEntry,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TeamRoleInline(admin.TabularInline):
    model = TeamRole
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "group", "created_at"]
    search_fields = ["slug", "group__name"]
    inlines = [TeamRoleInline]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["team", "number", "created_by", "created_at", "comment"]
    list_filter = ["team"]


@admin.register(PolicyDecision)
class PolicyDecisionAdmin(ReadOnlyAdmin):
    """The audit trail, filterable per team and action."""

    list_display = ["at", "team", "action", "decision", "object_type", "object_id", "policy_version", "user", "reason"]
    list_filter = ["team", "action", "decision"]
    search_fields = ["reason", "object_id"]
    date_hierarchy = "at"


@admin.register(DataOwnership)
class DataOwnershipAdmin(ReadOnlyAdmin):
    list_display = ["content_type", "object_id", "target", "team", "kind", "acquired_at", "released_at"]
    list_filter = ["team", "kind"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "team", "kind", "breach_kind", "amount", "reason"]
    list_filter = ["team", "kind"]


@admin.register(UsageEntry)
class UsageEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "team", "facility_code", "facility_class", "hours", "kind", "semester"]
    list_filter = ["team", "semester", "facility_class"]


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["title", "team", "state", "target", "object_class", "exclusive_until", "expires_at"]
    list_filter = ["state", "team"]


@admin.register(ClaimConflict)
class ClaimConflictAdmin(ReadOnlyAdmin):
    list_display = ["claim_a", "claim_b", "reason", "detected_at", "resolved_at"]


@admin.register(InboxNotification)
class InboxNotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "recipient", "team", "event", "channel", "status"]
    list_filter = ["event", "channel", "status"]
