"""API serializers of `notifications`: thin shapes for the outbox rows, filters and preferences."""

from __future__ import annotations

import re
from datetime import time
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .events import catalogue, title_for
from .messages import link_for
from .models import Digest, Notification, Preference, Status

USER_STATUSES = [(value, label) for value, label in Status.choices if value != Status.SUPPRESSED]


class NotificationSerializer(serializers.ModelSerializer):
    title = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    digest: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="the digest it was folded into, if any")

    class Meta:
        model = Notification
        fields = ["id", "event", "title", "link", "channel", "status", "urgent", "team", "payload", "digest", "digest_kind",
                  "created_at", "not_before", "attempts", "next_attempt_at", "sent_at", "read_at", "last_error"]
        read_only_fields = fields

    def get_title(self, obj: Notification) -> str:
        if obj.is_digest:
            return f"{obj.get_digest_kind_display()} digest"
        return title_for(obj.event, obj.payload or {})

    def get_link(self, obj: Notification) -> str:
        return link_for(obj.event, obj.payload or {})

    def get_team(self, obj: Notification) -> str | None:
        return obj.team.name if obj.team_id and obj.team else None


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false, nothing that merely looks like one (a client sending "yes" has a bug)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


HOUR_MINUTE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@extend_schema_field({"type": "string", "pattern": HOUR_MINUTE.pattern, "example": "22:00"})
class HourMinuteField(serializers.Field):
    """A local time of day as "HH:MM"."""

    default_error_messages = {"invalid": "a time of day as HH:MM"}

    def to_internal_value(self, data: Any) -> time:
        if not isinstance(data, str) or not HOUR_MINUTE.match(data):
            self.fail("invalid")
        return time.fromisoformat(data)

    def to_representation(self, value: time) -> str:
        return value.strftime("%H:%M")


class NotificationQuerySerializer(serializers.Serializer):
    channel = serializers.RegexField(r"^[a-z][a-z0-9_-]{0,31}$", required=False, help_text="inbox (default), email, slack, or all")
    status = serializers.ChoiceField(choices=USER_STATUSES, required=False)
    unread = serializers.BooleanField(required=False, help_text="only unread (true) or only read (false)")
    event = serializers.RegexField(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$", max_length=64, required=False)


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many notifications were marked read")


class PreferenceSerializer(serializers.ModelSerializer):
    """A person's preferences; every field optional on PATCH. Times are local to ``timezone``."""

    quiet_start = HourMinuteField(allow_null=True, required=False)
    quiet_end = HourMinuteField(allow_null=True, required=False)
    email_enabled = StrictBooleanField(required=False)
    slack_enabled = StrictBooleanField(required=False)
    digest = serializers.ChoiceField(choices=Digest.choices, required=False)
    digest_hour = serializers.IntegerField(min_value=0, max_value=23, allow_null=True, required=False)
    muted_events = serializers.ListField(child=serializers.CharField(max_length=64), max_length=100, required=False)
    timezone = serializers.CharField(max_length=64, allow_blank=True, required=False)
    slack_webhook_url = serializers.CharField(max_length=500, allow_blank=True, required=False,
                                              help_text="your own Slack incoming webhook (https)")
    slack_member_id = serializers.CharField(max_length=32, allow_blank=True, required=False)

    class Meta:
        model = Preference
        fields = ["timezone", "quiet_start", "quiet_end", "digest", "digest_hour", "email_enabled", "slack_enabled",
                  "muted_events", "slack_webhook_url", "slack_member_id", "updated_at"]
        read_only_fields = ["updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        muted = self.fields["muted_events"]
        muted.child = serializers.ChoiceField(choices=sorted(catalogue()))  # type: ignore[attr-defined]
        muted.child.bind(field_name="", parent=muted)  # type: ignore[attr-defined]


class OutboxSummarySerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()),
                                   help_text="rows per channel and status")
    failures = NotificationSerializer(many=True, help_text="the latest permanent failures")
