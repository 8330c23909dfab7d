"""Serializers of the requests API: thin shells around the services."""

from __future__ import annotations

from django.contrib.auth.models import Group
from rest_framework import serializers
from tom_targets.models import Target

from .models import Dispatch, ObservingRequest, RequestTransition


class ExposureSerializer(serializers.Serializer):
    filter = serializers.CharField(max_length=32)
    exposure_s = serializers.FloatField(min_value=0.001, max_value=3600)
    count = serializers.IntegerField(min_value=1, max_value=100, default=1)


class RequestCreateSerializer(serializers.Serializer):
    """What a team submits: the goal, its window and how sure it wants to be."""

    target = serializers.PrimaryKeyRelatedField(queryset=Target.objects.all())
    team = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all())
    telescope_class = serializers.CharField(max_length=16)
    exposures = ExposureSerializer(many=True)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    cadence_period_hours = serializers.FloatField(required=False, allow_null=True, min_value=0.01, max_value=24 * 365)
    cadence_visits = serializers.IntegerField(default=1, min_value=1, max_value=1000)
    max_airmass = serializers.FloatField(default=2.0, min_value=1.0, max_value=10.0)
    min_moon_separation_deg = serializers.FloatField(default=30.0, min_value=0.0, max_value=180.0)
    sun_max_alt_deg = serializers.FloatField(default=-12.0, min_value=-90.0, max_value=0.0)
    priority = serializers.FloatField(default=5.0, min_value=0.0, max_value=100.0)
    success_probability = serializers.FloatField(default=0.95, min_value=0.01, max_value=0.999)
    allow_same_site = serializers.BooleanField(default=False)

    def validate_team(self, team: Group) -> Group:
        user = self.context["request"].user
        from . import hooks

        if not (user.is_superuser or user.groups.filter(pk=team.pk).exists()):
            raise serializers.ValidationError("you are not a member of this team")
        if not (user.is_superuser or hooks.request_act_allowed(user=user, team=team)):
            raise serializers.ValidationError("observers of this team cannot spend its telescope time")
        return team

    def validate_target(self, target: Target) -> Target:
        user = self.context["request"].user
        if not (user.is_superuser or user.has_perm("tom_targets.view_target", target)):
            raise serializers.ValidationError("no such target")
        return target


class DispatchSerializer(serializers.ModelSerializer):
    facility = serializers.CharField(source="facility.code")
    site = serializers.CharField(source="facility.site.code")

    class Meta:
        model = Dispatch
        fields = [
            "id", "visit", "facility", "site", "state", "remote_id", "window_start", "window_end", "p_success",
            "p_clear", "duration_s", "reason", "submitted_at", "finished_at",
        ]


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RequestTransition
        fields = ["from_state", "to_state", "reason", "actor", "at"]


class RequestSerializer(serializers.ModelSerializer):
    target_name = serializers.CharField(source="target.name")
    team_name = serializers.CharField(source="team.name")
    dispatches = DispatchSerializer(many=True, read_only=True)
    transitions = TransitionSerializer(many=True, read_only=True)

    class Meta:
        model = ObservingRequest
        fields = [
            "id", "target", "target_name", "team", "team_name", "telescope_class", "exposures", "window_start",
            "window_end", "cadence_period", "cadence_visits", "visit", "visits_completed", "visits_missed",
            "max_airmass", "min_moon_separation_deg", "sun_max_alt_deg", "priority", "success_probability",
            "allow_same_site", "source", "state", "plan_outcome", "plan_probability", "planned_at", "created_at",
            "dispatches", "transitions",
        ]
        read_only_fields = fields
