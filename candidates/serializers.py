"""Serializers of the candidates API: thin shapes; validation of predicates and regions is the services'."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from candidates.models import AlertBatch, Match, RegionKind, StreamFilter, WatchRegion


class AlertBatchJsonSerializer(serializers.Serializer):
    """Baton's generic JSON batch (``candidates/schemas/baton_alert_batch_v1.schema.json``)."""

    alerts = serializers.ListField(
        child=serializers.DictField(),
        help_text="alerts: {alert_id, object_id, ra, dec, time|mjd, band, mag+mag_err|flux+flux_err, "
        "classifications?, history?, broker?, extra?}",
    )


class BatchAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    accepted = serializers.IntegerField(help_text="alerts in the batch, queued for processing")
    status = serializers.CharField()
    status_url = serializers.URLField()


class AlertErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    alert_id = serializers.CharField(allow_null=True)
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class AlertBatchSerializer(serializers.ModelSerializer):
    # Not "errors": that name is the serializer's own validation-errors property.
    alert_errors = AlertErrorSerializer(source="errors", many=True, read_only=True,
                                        help_text="one entry per rejected alert: index in the batch, alert id, field")

    class Meta:
        model = AlertBatch
        fields = [
            "id", "source", "broker", "content_type", "status", "received_at", "started_at", "finished_at",
            "n_received", "n_stored", "n_duplicate", "n_rejected", "n_new_targets", "n_matches", "alert_errors", "failure",
        ]  # fmt: skip
        read_only_fields = fields


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class StreamFilterSerializer(serializers.ModelSerializer):
    version = serializers.SerializerMethodField()
    predicates = serializers.SerializerMethodField()

    class Meta:
        model = StreamFilter
        fields = ["id", "name", "team", "owner", "active", "created_at", "version", "predicates"]
        read_only_fields = fields

    def _latest(self, obj: StreamFilter) -> Any:
        return obj.versions.order_by("-version").first()

    def get_version(self, obj: StreamFilter) -> int:
        latest = self._latest(obj)
        return latest.version if latest else 0

    def get_predicates(self, obj: StreamFilter) -> list[dict[str, Any]]:
        latest = self._latest(obj)
        return list(latest.predicates) if latest else []


class StreamFilterWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    team = serializers.IntegerField(required=False, allow_null=True, help_text="owning team (a group you belong "
                                    "to); omit for a filter of your own")
    predicates = serializers.JSONField(help_text="list of {field, op, value} conditions (AND)")
    active = serializers.BooleanField(default=True)


class StreamFilterUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    predicates = serializers.JSONField(required=False, help_text="new predicates make a new version")
    active = serializers.BooleanField(required=False)


class WatchRegionSerializer(serializers.ModelSerializer):
    class Meta:
        model = WatchRegion
        fields = ["id", "name", "team", "owner", "kind", "spec", "version", "area", "active", "created_at",
                  "updated_at"]
        read_only_fields = fields


class WatchRegionWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    team = serializers.IntegerField(required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=RegionKind.choices)
    spec = serializers.JSONField(help_text="cone {ra, dec, radius}; polygon {vertices}; moc {moc}, degrees")
    active = serializers.BooleanField(default=True)


class WatchRegionUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    kind = serializers.ChoiceField(choices=RegionKind.choices, required=False)
    spec = serializers.JSONField(required=False)
    active = serializers.BooleanField(required=False)


class MatchSerializer(serializers.ModelSerializer):
    broker = serializers.CharField(source="candidate.broker")
    alert_id = serializers.CharField(source="candidate.alert_id")
    object_id = serializers.CharField(source="candidate.object_id")
    time = serializers.DateTimeField(source="candidate.time")
    ra = serializers.FloatField(source="candidate.ra")
    dec = serializers.FloatField(source="candidate.dec")
    band = serializers.CharField(source="candidate.band")
    mag = serializers.FloatField(source="candidate.mag", allow_null=True)
    mag_err = serializers.FloatField(source="candidate.mag_err", allow_null=True)
    classifications = serializers.JSONField(source="candidate.classifications")
    target_name = serializers.CharField(source="target.name")
    filter_version = serializers.IntegerField(source="filter_version.version", allow_null=True, default=None)

    class Meta:
        model = Match
        fields = [
            "id", "matched_at", "team", "owner", "filter", "filter_version", "region", "region_version", "target",
            "target_name", "candidate", "broker", "alert_id", "object_id", "time", "ra", "dec", "band", "mag",
            "mag_err", "classifications",
        ]  # fmt: skip
        read_only_fields = fields


class FollowupSerializer(serializers.Serializer):
    firing = serializers.IntegerField()
    created = serializers.BooleanField(help_text="False when the team had already asked for this target")
    status = serializers.CharField()


# --- the selection-function ledger and vetting


class LedgerQuerySerializer(serializers.Serializer):
    """Which ledger: a team's (you must belong to it) or, with ``mine``, your own filters' and
    regions'; candidates ingested in [start, end) (ISO 8601; a time without a zone is UTC)."""

    team = serializers.IntegerField(required=False, min_value=1, help_text="team (group) id")
    mine = serializers.BooleanField(required=False, default=False, help_text="your own filters and regions")
    start = serializers.DateTimeField(help_text="ingested at or after (UTC)")
    end = serializers.DateTimeField(help_text="ingested before (UTC)")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "must be after start"})
        if ("team" in attrs) == bool(attrs.get("mine")):
            raise serializers.ValidationError({"team": "give a team id, or mine=true for your own ledger"})
        return attrs


class LedgerPageQuerySerializer(LedgerQuerySerializer):
    after = serializers.IntegerField(required=False, default=0, min_value=0, help_text="last candidate id of the "
                                     "previous page (keyset pagination); 0 for the first page")
    limit = serializers.IntegerField(required=False, default=1000, min_value=1, max_value=5000)


class LedgerExportQuerySerializer(LedgerQuerySerializer):
    format = serializers.ChoiceField(choices=["csv", "parquet"], default="csv")


class LedgerRowSerializer(serializers.Serializer):
    """One candidate's fate (see :data:`candidates.ledger.COLUMNS`)."""

    candidate_id = serializers.IntegerField()
    broker = serializers.CharField()
    alert_id = serializers.CharField()
    object_id = serializers.CharField()
    target_id = serializers.IntegerField()
    target = serializers.CharField()
    time = serializers.DateTimeField()
    ingested_at = serializers.DateTimeField()
    ra = serializers.FloatField(help_text="ICRS degrees")
    dec = serializers.FloatField(help_text="ICRS degrees")
    band = serializers.CharField()
    mag = serializers.FloatField(allow_null=True, help_text="AB")
    mag_err = serializers.FloatField(allow_null=True)
    top_classifier = serializers.CharField(allow_null=True)
    top_class = serializers.CharField(allow_null=True)
    top_score = serializers.FloatField(allow_null=True)
    classifications = serializers.CharField(help_text="JSON list [{classifier, version, class, score}]")
    filters = serializers.CharField(help_text="JSON list [{filter, name, version, passed, failed_clause?, clause?}]")
    filters_passed = serializers.IntegerField()
    regions = serializers.CharField(help_text="JSON list [{region, name, version, inside}]")
    regions_inside = serializers.IntegerField()
    trigger = serializers.CharField(help_text="fired, pending, refused, failed, already_triggered, not_triggered or ''")
    trigger_rule = serializers.IntegerField(allow_null=True)
    trigger_error = serializers.CharField(allow_blank=True)
    request_id = serializers.IntegerField(allow_null=True)
    planner_outcome = serializers.CharField(allow_blank=True)
    observation = serializers.CharField(allow_blank=True, help_text="the request's state")
    visits_completed = serializers.IntegerField(allow_null=True)
    # A field named "label" shadows Field.label for the type checker only: DRF's metaclass pops
    # declared fields off the class.
    label = serializers.CharField(allow_blank=True, help_text="the team's current verdict: real, bogus or ''")  # type: ignore[assignment]
    label_class = serializers.CharField(allow_blank=True)
    label_note = serializers.CharField(allow_blank=True)
    labelled_by = serializers.CharField(allow_blank=True)
    labelled_at = serializers.DateTimeField(allow_null=True)
    n_labels = serializers.IntegerField()
    reason = serializers.CharField(help_text="the final reason: one of the summary's reasons")


class LedgerPageSerializer(serializers.Serializer):
    results = LedgerRowSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True, help_text="pass as ?after= for the next page; null at the end")
    next = serializers.CharField(allow_null=True, help_text="URL of the next page; null at the end")


class LedgerSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="candidates ingested in the period")
    reasons = serializers.DictField(child=serializers.IntegerField(), help_text="reason -> candidates; they add up "
                                    "to total")


class LabelWriteSerializer(serializers.Serializer):
    candidate = serializers.IntegerField(min_value=1)
    team = serializers.IntegerField(min_value=1, help_text="the team you label for (you must belong to it)")
    verdict = serializers.ChoiceField(choices=["real", "bogus", ""], required=False, default="")
    label_class = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class LabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    candidate = serializers.IntegerField(source="candidate_id")
    team = serializers.IntegerField(source="team_id")
    user = serializers.CharField(source="user.username")
    verdict = serializers.CharField(allow_blank=True)
    label_class = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TrainingExportQuerySerializer(serializers.Serializer):
    team = serializers.IntegerField(min_value=1)
    format = serializers.ChoiceField(choices=["csv", "parquet"], default="csv")
    start = serializers.DateTimeField(required=False, help_text="candidates ingested at or after (UTC)")
    end = serializers.DateTimeField(required=False, help_text="candidates ingested before (UTC)")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("start") and attrs.get("end") and attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "must be after start"})
        return attrs
