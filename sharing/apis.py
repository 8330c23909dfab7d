"""The sharing API: a team's destinations and its outbox, for the team's admins only.

Thin: parse, call one service or selector, render. A team that does not exist is 404; a
user who is not one of its admins gets 403 (the roles are policies'); bad input is 400 with
field messages and changes nothing. Credentials are written, never read back.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from policies.apis import E400, E401, E403, E404, _ServiceErrors, _team
from policies.models import Team
from policies.selectors import team_is_admin
from tomsite.pagination import StrictLimitOffsetPagination

from . import selectors, services
from .models import Destination, OutboxStatus
from .serializers import (
    DestinationPatchSerializer,
    DestinationSerializer,
    DestinationWriteSerializer,
    OutboxItemSerializer,
    OutboxRetriedSerializer,
    OutboxRetrySerializer,
)

READ_ERRORS = {401: E401, 403: E403, 404: E404}
WRITE_ERRORS = {400: E400, 401: E401, 403: E403, 404: E404}


def _admin_team(request: Request, slug: str) -> Team:
    team = _team(slug)
    if not team_is_admin(user=request.user, team=team):
        raise PermissionDenied("only the team's admins manage its sharing")
    return team


def _destination(team: Team, pk: int) -> Destination:
    found = Destination.objects.filter(team=team.group, pk=pk).first()
    if found is None:
        raise NotFound("no such destination")
    return found


class DestinationListCreateApi(_ServiceErrors, APIView):
    """The team's sharing destinations (partner TOMs / Batons, Hermes); admins add them here."""

    @extend_schema(responses={200: DestinationSerializer(many=True), **READ_ERRORS}, tags=["sharing"])
    def get(self, request: Request, slug: str) -> Response:
        team = _admin_team(request, slug)
        rows = [selectors.destination_row(d) for d in selectors.destinations_of(team=team)]
        return Response(DestinationSerializer(rows, many=True).data)

    @extend_schema(request=DestinationWriteSerializer, responses={201: DestinationSerializer, **WRITE_ERRORS}, tags=["sharing"])
    def post(self, request: Request, slug: str) -> Response:
        team = _admin_team(request, slug)
        serializer = DestinationWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            destination = services.destination_create(team=team, by=request.user, data=dict(serializer.validated_data))
        except services.PolicyInvalid as exc:
            raise ValidationError({"name": [str(exc)]}) from exc
        return Response(DestinationSerializer(selectors.destination_row(destination)).data, status=status.HTTP_201_CREATED)


class DestinationDetailApi(_ServiceErrors, APIView):
    """One destination: read, change (any subset of fields), remove (with its outbox)."""

    @extend_schema(responses={200: DestinationSerializer, **READ_ERRORS}, tags=["sharing"])
    def get(self, request: Request, slug: str, pk: int) -> Response:
        team = _admin_team(request, slug)
        return Response(DestinationSerializer(selectors.destination_row(_destination(team, pk))).data)

    @extend_schema(request=DestinationPatchSerializer, responses={200: DestinationSerializer, **WRITE_ERRORS}, tags=["sharing"])
    def patch(self, request: Request, slug: str, pk: int) -> Response:
        team = _admin_team(request, slug)
        destination = _destination(team, pk)
        serializer = DestinationPatchSerializer(data=request.data, context={"instance": destination})
        serializer.is_valid(raise_exception=True)
        destination = services.destination_update(team=team, by=request.user, destination=destination,
                                                  data=dict(serializer.validated_data))
        return Response(DestinationSerializer(selectors.destination_row(destination)).data)

    @extend_schema(responses={204: None, **WRITE_ERRORS}, tags=["sharing"])
    def delete(self, request: Request, slug: str, pk: int) -> Response:
        team = _admin_team(request, slug)
        services.destination_delete(team=team, by=request.user, destination=_destination(team, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OutboxApi(_ServiceErrors, APIView):
    """What the team pushed, is pushing and could not push, newest first (paginated)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=OutboxStatus.values, required=False),
            OpenApiParameter("destination", str, required=False, description="a destination's name"),
            OpenApiParameter("limit", int, required=False), OpenApiParameter("offset", int, required=False),
        ],
        responses={200: OutboxItemSerializer(many=True), 400: E400, **READ_ERRORS}, tags=["sharing"],
    )
    def get(self, request: Request, slug: str) -> Response:
        team = _admin_team(request, slug)
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in OutboxStatus.values:
            raise ValidationError({"status": f"one of {', '.join(OutboxStatus.values)}"})
        destination = request.query_params.get("destination")
        if destination is not None and (not destination.strip() or "\x00" in destination or len(destination) > 80):
            raise ValidationError({"destination": "a destination's name (at most 80 characters)"})
        paginator = StrictLimitOffsetPagination()
        page: Any = paginator.paginate_queryset(selectors.outbox_of(team=team, status=wanted, destination=destination),
                                                request, view=self)
        return paginator.get_paginated_response(OutboxItemSerializer([selectors.outbox_row(i) for i in page], many=True).data)


class OutboxRetryApi(_ServiceErrors, APIView):
    """Send failed rows again (after fixing the destination); rows not failed are left alone."""

    @extend_schema(request=OutboxRetrySerializer, responses={200: OutboxRetriedSerializer, **WRITE_ERRORS}, tags=["sharing"])
    def post(self, request: Request, slug: str) -> Response:
        team = _admin_team(request, slug)
        serializer = OutboxRetrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = services.outbox_retry(team=team, by=request.user, item_ids=serializer.validated_data["items"])
        return Response(OutboxRetriedSerializer({"requeued": count}).data)
