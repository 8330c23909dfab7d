"""The notifications API: a person's notifications, marking them read, their preferences; the outbox for staff.

Views are thin: they parse input, call one selector or service, and render.
Someone else's notification answers 404, as if absent.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .models import Notification
from .serializers import (
    MarkedSerializer,
    NotificationQuerySerializer,
    NotificationSerializer,
    OutboxSummarySerializer,
    PreferenceSerializer,
)

E400 = OpenApiResponse(description="invalid input; nothing was changed")
E401 = OpenApiResponse(description="not authenticated")
E403 = OpenApiResponse(description="staff only")
E404 = OpenApiResponse(description="no such notification, or not yours")
BIGINT_MAX = 2**63 - 1


def _own(request: Request, pk: int) -> Notification:
    if not 0 < pk <= BIGINT_MAX:
        raise NotFound("no such notification")
    found = selectors.notifications_for(user=request.user, channel=None).filter(pk=pk).first()
    if found is None:
        raise NotFound("no such notification")
    return found


class NotificationListApi(ListAPIView):
    """Your notifications, newest first: the inbox by default; ``channel=all`` for every channel's deliveries."""

    serializer_class = NotificationSerializer

    def get_queryset(self) -> QuerySet[Notification]:
        # A plain dict, not the QueryDict: an empty "?status=" is then refused, not read as "no filter".
        query = NotificationQuerySerializer(data=dict(self.request.query_params.items()))
        query.is_valid(raise_exception=True)
        channel = query.validated_data.get("channel", "inbox")
        return selectors.notifications_for(
            user=self.request.user, channel=None if channel == "all" else channel,
            status=query.validated_data.get("status"), unread=query.validated_data.get("unread", None),
            event=query.validated_data.get("event"),
        )

    @extend_schema(parameters=[NotificationQuerySerializer],
                   responses={200: NotificationSerializer(many=True), 400: E400, 401: E401}, tags=["notifications"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class NotificationDetailApi(APIView):
    """One of your notifications."""

    @extend_schema(responses={200: NotificationSerializer, 401: E401, 404: E404}, tags=["notifications"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(NotificationSerializer(_own(request, pk)).data)


class NotificationReadApi(APIView):
    """Mark one of your notifications read (marking it again changes nothing)."""

    @extend_schema(request=None, responses={200: NotificationSerializer, 401: E401, 404: E404}, tags=["notifications"])
    def post(self, request: Request, pk: int) -> Response:
        row = services.notification_mark_read(user=request.user, notification_id=_own(request, pk).pk)
        if row is None:
            raise NotFound("no such notification")
        return Response(NotificationSerializer(row).data)


class NotificationReadAllApi(APIView):
    """Mark every unread notification in your inbox read."""

    @extend_schema(request=None, responses={200: MarkedSerializer, 401: E401}, tags=["notifications"])
    def post(self, request: Request) -> Response:
        return Response(MarkedSerializer({"marked": services.notifications_mark_all_read(user=request.user)}).data)


class PreferenceApi(APIView):
    """Your notification preferences (within what your teams' rules allow)."""

    @extend_schema(responses={200: PreferenceSerializer, 401: E401}, tags=["notifications"])
    def get(self, request: Request) -> Response:
        return Response(PreferenceSerializer(selectors.preference_for(user=request.user)).data)

    @extend_schema(request=PreferenceSerializer, responses={200: PreferenceSerializer, 400: E400, 401: E401},
                   tags=["notifications"])
    def patch(self, request: Request) -> Response:
        body = PreferenceSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        try:
            preference = services.preference_update(user=request.user, changes=dict(body.validated_data))
        except services.NotificationInvalid as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationError({field: [message or str(exc)]}) from exc
        return Response(PreferenceSerializer(preference).data)


class OutboxApi(APIView):
    """The outbox at a glance (staff): rows per channel and status, and the latest permanent failures."""

    @extend_schema(responses={200: OutboxSummarySerializer, 401: E401, 403: E403}, tags=["notifications"])
    def get(self, request: Request) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
        return Response(OutboxSummarySerializer(selectors.outbox_summary()).data)
