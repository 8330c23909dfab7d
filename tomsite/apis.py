"""The system-status API: what the health probe says, described in the OpenAPI schema."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .views import system_status


class SystemStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"])
    database = serializers.CharField()
    redis = serializers.CharField()
    worker = serializers.ChoiceField(choices=["ok", "stale", "unknown"])
    worker_heartbeat_age_s = serializers.FloatField(required=False, help_text="seconds since the last heartbeat")


class SystemStatusApi(APIView):
    """The state of Baton's own machinery: database, Redis, and the Celery worker's heartbeat."""

    @extend_schema(responses={200: SystemStatusSerializer, 503: SystemStatusSerializer}, tags=["system"])
    def get(self, request: Request) -> Response:
        body = system_status()
        return Response(SystemStatusSerializer(body).data, status=200 if body["status"] == "ok" else 503)
