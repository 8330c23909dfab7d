"""Drills API shapes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Drill
from .scenarios import PRESETS


class DrillSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name", read_only=True)
    progress = serializers.FloatField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = Drill
        fields = ["id", "name", "team", "state", "seed", "scenario", "scheduled_for", "sim_start", "step_s", "steps",
                  "speed", "step", "progress", "error", "rerun_of", "created_by", "created_at", "started_at",
                  "finished_at"]
        read_only_fields = fields


class DrillCreateSerializer(serializers.Serializer):
    team = serializers.CharField(help_text="the team's slug")
    name = serializers.CharField(max_length=100)
    scenario = serializers.JSONField(required=False, help_text="a scenario (see drills.scenarios); or give preset")
    preset = serializers.ChoiceField(choices=PRESETS, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=1)
    scheduled_for = serializers.DateTimeField(required=False, help_text="start later (default: now)")
    speed = serializers.FloatField(min_value=0.0, max_value=1e6, default=0.0,
                                   help_text="simulated seconds per wall second; 0: as fast as possible")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("scenario" in attrs) == ("preset" in attrs):
            raise serializers.ValidationError({"scenario": "give a scenario or a preset (one of them)"})
        return attrs


class DrillAckSerializer(serializers.Serializer):
    notification_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class DrillReportSerializer(serializers.Serializer):
    """The report: latencies (simulated seconds), goals, events, dispatches, notifications with acknowledgements,
    policy decisions and faults (see drills.services.drill_report)."""

    drill = serializers.DictField()
    alerts = serializers.DictField()
    first = serializers.DictField()
    latency_s = serializers.DictField()
    goals = serializers.DictField()
    events = serializers.ListField(child=serializers.DictField())
    dispatches = serializers.ListField(child=serializers.DictField())
    non_simulated_dispatches = serializers.IntegerField()
    notifications = serializers.ListField(child=serializers.DictField())
    acknowledged = serializers.IntegerField()
    policy_decisions = serializers.ListField(child=serializers.DictField())
    faults = serializers.ListField(child=serializers.DictField())
