"""The candidates REST API: push alert batches, read their status, manage filters and regions,
list matches and ask for follow-up. Token auth (``Authorization: Token <key>``)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import Group
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from candidates import selectors, services
from candidates.models import Broker
from candidates.packets import AVRO_CONTENT_TYPES, JSON_CONTENT_TYPES, MAX_BATCH_BYTES, PacketError
from candidates.serializers import (
    AlertBatchJsonSerializer,
    AlertBatchSerializer,
    BatchAcceptedSerializer,
    ErrorSerializer,
    FollowupSerializer,
    MatchSerializer,
    StreamFilterSerializer,
    StreamFilterUpdateSerializer,
    StreamFilterWriteSerializer,
    WatchRegionSerializer,
    WatchRegionUpdateSerializer,
    WatchRegionWriteSerializer,
)
from candidates.services.batches import media_type

_401 = OpenApiResponse(ErrorSerializer, description="not authenticated")
_403 = OpenApiResponse(ErrorSerializer, description="not allowed")
_404 = OpenApiResponse(ErrorSerializer, description="not found")
# Field errors come as {"field": ["message"]}, service errors as {"detail": "message"}.
_400 = OpenApiResponse(description="invalid input: {detail} or {field: [messages]}")
_ID = [OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="the object's id")]


def _int_id(value: str, what: str) -> int:
    """A path id, or a JSON 404 (the URL takes any string so that a malformed id is answered in JSON)."""
    if not value.isdigit() or len(value) > 18:
        raise NotFound(f"no such {what}")
    return int(value)


class AlertBatchPushApi(APIView):
    """Push a batch of alerts (generic JSON, or Rubin/ZTF Avro). Accepted at once (202), processed by Celery.

    The body is checked only for its envelope here: size (64 MiB at most), content type, the
    JSON ``alerts`` list or the Avro container's framing. Each alert is validated when the
    batch is processed; a bad alert is reported in the batch status and never loses the good
    ones. Sending the same alert again stores nothing new. The sender must be a registered
    broker account or hold the ``candidates.add_alertbatch`` permission.
    """

    @extend_schema(
        request={
            "application/json": AlertBatchJsonSerializer,
            "application/avro": OpenApiTypes.BINARY,
            "avro/binary": OpenApiTypes.BINARY,
        },
        responses={
            202: BatchAcceptedSerializer,
            400: _400,
            401: _401,
            403: _403,
            413: OpenApiResponse(ErrorSerializer, description="body over 64 MiB"),
            415: OpenApiResponse(ErrorSerializer, description="unsupported content type"),
        },
        tags=["candidates"],
    )
    def post(self, request: Request) -> Response:
        broker = Broker.objects.filter(user_id=request.user.pk or 0).first()
        if broker is None and not request.user.has_perm("candidates.add_alertbatch"):
            raise PermissionDenied("this account is not a registered broker and may not push alerts")
        kind = media_type(request.content_type)
        if kind not in JSON_CONTENT_TYPES | AVRO_CONTENT_TYPES:
            supported = ", ".join(sorted(JSON_CONTENT_TYPES | AVRO_CONTENT_TYPES))
            return Response({"detail": f"unsupported content type {request.content_type!r}; expected one of: "
                             f"{supported}"}, status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BATCH_BYTES:  # refused before a byte of the body is read
            return Response({"detail": f"body is {length} bytes; the limit is {MAX_BATCH_BYTES} bytes (64 MiB)"},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            batch = services.batch_receive(
                body=request.body, content_type=request.content_type, sender=request.user,
                broker=broker.name if broker else "",
            )
        except PacketError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        url = request.build_absolute_uri(reverse("candidates:api-batch", args=[batch.pk]))
        body = {"id": str(batch.pk), "accepted": batch.n_received, "status": batch.status, "status_url": url}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class AlertBatchApi(APIView):
    """A pushed batch's status: counts (stored, duplicates, rejected, new targets, matches) and per-alert errors."""

    @extend_schema(
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the batch id")],
        responses={200: AlertBatchSerializer, 401: _401, 404: _404}, tags=["candidates"],
    )
    def get(self, request: Request, pk: str) -> Response:
        try:
            batch_id = uuid.UUID(pk)
        except ValueError:
            raise NotFound("no such batch") from None
        batch = selectors.batch_visible_to(user=request.user, batch_id=batch_id)
        if batch is None:
            raise NotFound("no such batch")
        return Response(AlertBatchSerializer(batch).data)


def _team_for(request: Request, team_id: int | None) -> Group | None:
    if team_id is None:
        return None
    if team_id not in selectors.team_ids_of(user=request.user):
        raise ValidationError({"team": "you are not a member of that team"})
    return Group.objects.get(pk=team_id)


def _owned_by(request: Request, team: Group | None) -> dict[str, Any]:
    return {"team": team, "owner": None} if team else {"team": None, "owner": request.user}


class StreamFilterListApi(ListAPIView):
    """Filters of your teams and your own; POST makes one (version 1)."""

    serializer_class = StreamFilterSerializer

    def get_queryset(self):
        return selectors.filters_visible_to(user=self.request.user)

    @extend_schema(tags=["candidates"], responses={200: StreamFilterSerializer(many=True), 401: _401})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=StreamFilterWriteSerializer, responses={201: StreamFilterSerializer, 400: _400, 401: _401},
                   tags=["candidates"])
    def post(self, request: Request) -> Response:
        data = StreamFilterWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        team = _team_for(request, values.pop("team", None))
        try:
            created = services.filter_create(**values, **_owned_by(request, team), created_by=request.user)
        except services.FilterInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(StreamFilterSerializer(created).data, status=status.HTTP_201_CREATED)


class StreamFilterApi(APIView):
    """One filter; PATCH changes it (new predicates make a new version)."""

    def _get(self, request: Request, pk: str) -> Any:
        found = selectors.filters_visible_to(user=request.user).filter(pk=_int_id(pk, "filter")).first()
        if found is None:
            raise NotFound("no such filter")
        return found

    @extend_schema(parameters=_ID, responses={200: StreamFilterSerializer, 401: _401, 404: _404}, tags=["candidates"])
    def get(self, request: Request, pk: str) -> Response:
        return Response(StreamFilterSerializer(self._get(request, pk)).data)

    @extend_schema(request=StreamFilterUpdateSerializer, parameters=_ID,
                   responses={200: StreamFilterSerializer, 400: _400, 401: _401, 404: _404}, tags=["candidates"])
    def patch(self, request: Request, pk: str) -> Response:
        found = self._get(request, pk)
        data = StreamFilterUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.filter_update(stream_filter=found, created_by=request.user, **data.validated_data)
        except services.FilterInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        found.refresh_from_db()
        return Response(StreamFilterSerializer(found).data)


class WatchRegionListApi(ListAPIView):
    """Watch regions of your teams and your own; POST makes one (a cone, polygon or MOC)."""

    serializer_class = WatchRegionSerializer

    def get_queryset(self):
        return selectors.regions_visible_to(user=self.request.user)

    @extend_schema(tags=["candidates"], responses={200: WatchRegionSerializer(many=True), 401: _401})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=WatchRegionWriteSerializer, responses={201: WatchRegionSerializer, 400: _400, 401: _401},
                   tags=["candidates"])
    def post(self, request: Request) -> Response:
        data = WatchRegionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        team = _team_for(request, values.pop("team", None))
        try:
            created = services.region_create(**values, **_owned_by(request, team))
        except services.RegionInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(WatchRegionSerializer(created).data, status=status.HTTP_201_CREATED)


class WatchRegionApi(APIView):
    """One watch region; PATCH changes it (a new shape is re-indexed and bumps its version)."""

    def _get(self, request: Request, pk: str) -> Any:
        found = selectors.regions_visible_to(user=request.user).filter(pk=_int_id(pk, "region")).first()
        if found is None:
            raise NotFound("no such region")
        return found

    @extend_schema(parameters=_ID, responses={200: WatchRegionSerializer, 401: _401, 404: _404}, tags=["candidates"])
    def get(self, request: Request, pk: str) -> Response:
        return Response(WatchRegionSerializer(self._get(request, pk)).data)

    @extend_schema(request=WatchRegionUpdateSerializer, parameters=_ID,
                   responses={200: WatchRegionSerializer, 400: _400, 401: _401, 404: _404}, tags=["candidates"])
    def patch(self, request: Request, pk: str) -> Response:
        found = self._get(request, pk)
        data = WatchRegionUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            updated = services.region_update(region=found, **data.validated_data)
        except services.RegionInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(WatchRegionSerializer(updated).data)


class MatchListApi(ListAPIView):
    """Matches of your teams' and your own filters and regions, newest first."""

    serializer_class = MatchSerializer

    def get_queryset(self):
        qs = selectors.matches_visible_to(user=self.request.user)
        params = self.request.query_params
        for key in ("team", "filter", "region", "target"):
            value = params.get(key)
            if value is not None:
                if not (value.isascii() and value.isdigit()):
                    raise ValidationError({key: "must be an id"})
                qs = qs.filter(**{f"{key}_id": int(value)})
        return qs

    @extend_schema(
        parameters=[OpenApiParameter(k, int, description=f"only matches of this {k} (id)") for k in
                    ("team", "filter", "region", "target")],
        responses={200: MatchSerializer(many=True), 400: _400, 401: _401},
        tags=["candidates"],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class FollowupApi(APIView):
    """Ask for follow-up of a match's target for the match's team (once per target and team)."""

    @extend_schema(request=None, parameters=_ID, responses={201: FollowupSerializer, 200: FollowupSerializer, 400: _400, 401: _401,
                                            404: _404}, tags=["candidates"])
    def post(self, request: Request, pk: str) -> Response:
        match = selectors.matches_visible_to(user=request.user).filter(pk=_int_id(pk, "match")).first()
        if match is None:
            raise NotFound("no such match")
        if match.team is None:
            raise ValidationError({"detail": "follow-up is requested for a team; this match is a personal one"})
        firing, created = services.followup_request(match=match, team=match.team, user=request.user)
        body = {"firing": firing.pk, "created": created, "status": firing.status}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
