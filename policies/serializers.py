"""API serializers of `policies`: thin shapes for teams, policy versions, claims, ledger, audit, inbox, data."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .documents import PolicyDocumentSerializer
from .fields import MAX_INT_ID, StrictBooleanField, StrictFloatField, StrictSlugField, object_id, text
from .models import (
    Claim,
    ClaimConflict,
    ClaimConsent,
    ClaimTransition,
    InboxNotification,
    LedgerEntry,
    PolicyDecision,
    PolicyVersion,
    Publication,
    Role,
    UsageKind,
)

# --- teams ------------------------------------------------------------------------------------


class TeamSerializer(serializers.Serializer):
    slug = StrictSlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    group_id = serializers.IntegerField(help_text="the team's auth.Group id")
    member_count = serializers.IntegerField()
    my_role = serializers.ChoiceField(choices=Role.choices, allow_null=True, help_text="your role; null if not a member")
    policy_version = serializers.IntegerField(allow_null=True, help_text="the number of the version in force")


class TeamCreateSerializer(serializers.Serializer):
    name = text(max_length=150)
    slug = StrictSlugField(max_length=80, required=False, allow_blank=True, default="")
    description = text(required=False, allow_blank=True, default="", max_length=5000)
    admins = serializers.ListField(child=object_id(max_value=MAX_INT_ID), min_length=1, max_length=20,
                                   help_text="user ids of the first admins")


class MemberSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MemberSetSerializer(serializers.Serializer):
    username = text(max_length=150, trim_whitespace=False)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER.value)


# --- policy versions ----------------------------------------------------------------------------


class PolicyVersionSerializer(serializers.Serializer):
    team = StrictSlugField()
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)
    parts = serializers.ListField(child=serializers.CharField(), help_text="the parts of the document you may read")
    document = serializers.DictField(help_text="the policy document (see PolicyDocument); parts you may not read are left out")


class PolicyVersionSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)


class PolicyChangeSerializer(serializers.Serializer):
    document = PolicyDocumentSerializer(help_text="the whole document (PUT) or the parts to change (PATCH)")
    comment = text(max_length=300, required=False, allow_blank=True, default="")


class PolicyPatchSerializer(serializers.Serializer):
    document = serializers.DictField(required=False, default=dict,
                                     help_text="parts to change: top-level parts replace, sharing merges per kind; "
                                               "none: nothing changes")
    comment = text(max_length=300, required=False, allow_blank=True, default="")


def version_payload(version: PolicyVersion, parts: list[str]) -> dict[str, Any]:
    document = {key: value for key, value in version.document.items() if key in parts or key == "schema"}
    return {
        "team": version.team.slug, "number": version.number, "created_at": version.created_at,
        "created_by": version.created_by.get_username() if version.created_by else None,
        "comment": version.comment, "parts": parts, "document": document,
    }


# --- usage, ledger, audit -------------------------------------------------------------------------


class AllocationUsageSerializer(serializers.Serializer):
    facility_class = serializers.CharField()
    facility_code = serializers.CharField(allow_blank=True)
    semester = serializers.CharField()
    hours = serializers.FloatField()
    used_hours = serializers.FloatField()
    remaining_hours = serializers.FloatField()


class UsageEntrySerializer(serializers.Serializer):
    facility_code = serializers.CharField()
    facility_class = serializers.CharField()
    hours = serializers.FloatField()
    kind = serializers.ChoiceField(choices=UsageKind.choices)
    source_key = serializers.CharField()
    semester = serializers.CharField()
    at = serializers.DateTimeField()


class UsageSerializer(serializers.Serializer):
    semester = serializers.CharField()
    allocations = AllocationUsageSerializer(many=True)
    entries = UsageEntrySerializer(many=True)


class LedgerEntrySerializer(serializers.ModelSerializer):
    policy_version = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = ["kind", "breach_kind", "amount", "quantity", "at", "reason", "policy_version"]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_policy_version(self, obj: LedgerEntry) -> int | None:
        return obj.policy_version.number if obj.policy_version else None


class LedgerSerializer(serializers.Serializer):
    team = StrictSlugField()
    balance = serializers.FloatField(help_text="credits over the ledger window (1 credit = 1 telescope hour)")
    priority_factor = serializers.FloatField(help_text="the planner's fair-share factor, within [0.5, 1.5]")
    totals = serializers.DictField(child=serializers.FloatField())
    entries = LedgerEntrySerializer(many=True)


class DecisionSerializer(serializers.ModelSerializer):
    policy_version = serializers.SerializerMethodField()
    user = serializers.SerializerMethodField()

    class Meta:
        model = PolicyDecision
        fields = ["id", "at", "action", "decision", "object_type", "object_id", "reason", "policy_version", "user", "detail"]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_policy_version(self, obj: PolicyDecision) -> int | None:
        return obj.policy_version.number if obj.policy_version else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_user(self, obj: PolicyDecision) -> str | None:
        return obj.user.get_username() if obj.user else None


# --- claims -----------------------------------------------------------------------------------


class ClaimConsentSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")

    class Meta:
        model = ClaimConsent
        fields = ["team", "decision", "decided_at"]


class ClaimTransitionSerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField()

    class Meta:
        model = ClaimTransition
        fields = ["from_state", "to_state", "at", "reason", "by"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_by(self, obj: ClaimTransition) -> str | None:
        return obj.by.get_username() if obj.by else None


class ClaimSerializer(serializers.ModelSerializer):
    """A claim; its target is left out (``target_hidden``) for a viewer who may not see the target."""

    team = serializers.CharField(source="team.name")
    target = serializers.SerializerMethodField()
    target_name = serializers.SerializerMethodField()
    target_hidden = serializers.SerializerMethodField()

    class Meta:
        model = Claim
        fields = ["id", "team", "title", "scope", "target", "target_name", "target_hidden", "object_class", "ra", "dec",
                  "radius_deg", "exclusive_until", "expires_at", "state", "created_at", "updated_at"]

    def _shown(self, obj: Claim) -> bool:
        return obj.target_id is not None and obj.target_id in self.context.get("visible_target_ids", set())

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_target(self, obj: Claim) -> int | None:
        return obj.target_id if self._shown(obj) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_target_name(self, obj: Claim) -> str | None:
        return obj.target.name if self._shown(obj) and obj.target else None

    @extend_schema_field(StrictBooleanField())
    def get_target_hidden(self, obj: Claim) -> bool:
        return obj.target_id is not None and not self._shown(obj)


class ClaimConflictSerializer(serializers.Serializer):
    other_claim = serializers.IntegerField()
    other_team = serializers.CharField()
    reason = serializers.CharField()
    detected_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class ClaimDetailSerializer(ClaimSerializer):
    consents = ClaimConsentSerializer(many=True, read_only=True)
    transitions = ClaimTransitionSerializer(many=True, read_only=True)
    conflicts = serializers.SerializerMethodField()

    class Meta(ClaimSerializer.Meta):
        fields = [*ClaimSerializer.Meta.fields, "consents", "transitions", "conflicts"]

    @extend_schema_field(ClaimConflictSerializer(many=True))
    def get_conflicts(self, obj: Claim) -> list[dict[str, Any]]:
        rows = []
        for conflict in ClaimConflict.objects.filter(claim_a=obj).select_related("claim_b__team") | ClaimConflict.objects.filter(
            claim_b=obj
        ).select_related("claim_a__team"):
            other = conflict.claim_b if conflict.claim_a_id == obj.pk else conflict.claim_a
            rows.append({"other_claim": other.pk, "other_team": other.team.name, "reason": conflict.reason,
                         "detected_at": conflict.detected_at, "resolved_at": conflict.resolved_at})
        return rows


class ClaimCreateSerializer(serializers.Serializer):
    team = StrictSlugField(help_text="slug of the claiming team")
    title = text(max_length=200, trim_whitespace=False)  # the service refuses a blank title
    scope = text(required=False, allow_blank=True, default="", max_length=10000)
    target = object_id(required=False, allow_null=True, default=None)
    object_class = text(required=False, allow_blank=True, default="", max_length=64)
    ra = StrictFloatField(required=False, allow_null=True, default=None, min_value=0, max_value=359.999999)
    dec = StrictFloatField(required=False, allow_null=True, default=None, min_value=-90, max_value=90)
    radius_deg = StrictFloatField(required=False, allow_null=True, default=None, min_value=0.000001, max_value=180)
    exclusive_until = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class ClaimReleaseSerializer(serializers.Serializer):
    reason = text(required=False, allow_blank=True, default="", max_length=300)


class ClaimConsentRequestSerializer(serializers.Serializer):
    team = StrictSlugField(help_text="slug of your team that was asked to agree")
    agree = StrictBooleanField()


class ClaimAcceptOverlapSerializer(serializers.Serializer):
    other_claim = object_id()


class ContributorSerializer(serializers.Serializer):
    team = serializers.CharField()
    data_points = serializers.DictField(child=serializers.IntegerField(), help_text="data points per kind")
    first_acquired = serializers.DateTimeField(allow_null=True)
    last_acquired = serializers.DateTimeField(allow_null=True)
    hours = serializers.FloatField(help_text="telescope hours used on the claim's targets")


# --- publications, inbox, data --------------------------------------------------------------------


class PublicationSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")

    class Meta:
        model = Publication
        fields = ["id", "team", "title", "reference", "target", "object_class", "ra", "dec", "radius_deg", "published_at"]


class PublicationCreateSerializer(serializers.Serializer):
    team = StrictSlugField()
    title = text(max_length=300, trim_whitespace=False)  # the service refuses a blank title
    reference = text(required=False, allow_blank=True, default="", max_length=200)
    target = object_id(required=False, allow_null=True, default=None)
    object_class = text(required=False, allow_blank=True, default="", max_length=64)
    ra = StrictFloatField(required=False, allow_null=True, default=None, min_value=0, max_value=359.999999)
    dec = StrictFloatField(required=False, allow_null=True, default=None, min_value=-90, max_value=90)
    radius_deg = StrictFloatField(required=False, allow_null=True, default=None, min_value=0.000001, max_value=180)
    published_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PublicationReportSerializer(serializers.Serializer):
    publication = PublicationSerializer()
    violated_claims = serializers.ListField(child=serializers.IntegerField())


class InboxNotificationSerializer(serializers.ModelSerializer):
    team = serializers.SerializerMethodField()

    class Meta:
        model = InboxNotification
        fields = ["id", "event", "channel", "team", "payload", "status", "deliver_after", "digest", "created_at", "read_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_team(self, obj: InboxNotification) -> str | None:
        return obj.team.name if obj.team else None


class PhotometryPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    target = serializers.IntegerField(source="target_id")
    timestamp = serializers.DateTimeField()
    bandpass = serializers.CharField()
    brightness = serializers.FloatField(allow_null=True)
    brightness_error = serializers.FloatField(allow_null=True)
    limit = serializers.FloatField(allow_null=True)
    unit = serializers.CharField()
    telescope = serializers.CharField()
    instrument = serializers.CharField()
    source_name = serializers.CharField()

