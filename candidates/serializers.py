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
