"""The requests API: submit, list, read and cancel observing requests."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import hooks
from .selectors import requests_visible_to
from .serializers import RequestCreateSerializer, RequestSerializer
from .services import IllegalTransition, RequestInvalid, request_cancel, request_submit

_ERRORS = {400: OpenApiResponse(description="invalid request"), 401: OpenApiResponse(description="not authenticated")}


class RequestListCreateApi(ListAPIView):
    """Observing requests of your teams; POST submits a new one (planned and dispatched at once)."""

    serializer_class = RequestSerializer

    def get_queryset(self):
        return requests_visible_to(user=self.request.user).prefetch_related("dispatches__facility__site", "transitions")

    @extend_schema(request=RequestCreateSerializer, responses={201: RequestSerializer, **_ERRORS}, tags=["requests"])
    def post(self, request: Request) -> Response:
        serializer = RequestCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        hours = data.pop("cadence_period_hours", None)
        try:
            created = request_submit(
                requester=request.user, source="api", cadence_period=timedelta(hours=hours) if hours else None,
                exposures=[dict(e) for e in data.pop("exposures")], **data,
            )
        except RequestInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(RequestSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["requests"])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


def _visible_request(request: Request, pk: int):  # type: ignore[no-untyped-def]
    found = requests_visible_to(user=request.user).filter(pk=pk).first()
    if found is None:
        raise NotFound("no such request")
    return found


class RequestDetailApi(APIView):
    """One request with its dispatches (one per facility copy) and its state history."""

    @extend_schema(responses={200: RequestSerializer, 404: OpenApiResponse(description="not found")}, tags=["requests"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(RequestSerializer(_visible_request(request, pk)).data)


class RequestCancelApi(APIView):
    """Cancel a request: every live copy is withdrawn from its facility (POST only: a sub-resource of its own)."""

    @extend_schema(
        request=None,
        responses={200: RequestSerializer, 403: OpenApiResponse(description="not an admin or member of its team"),
                   404: OpenApiResponse(description="not found"),
                   409: OpenApiResponse(description="the request has already ended")},
        tags=["requests"],
    )
    def post(self, request: Request, pk: int) -> Response:
        found = _visible_request(request, pk)
        if not (request.user.is_superuser or hooks.request_act_allowed(user=request.user, team=found.team)):
            raise PermissionDenied("only the team's admins and members may cancel its requests")
        try:
            cancelled = request_cancel(request_id=found.pk, actor=request.user.get_username())
        except IllegalTransition as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RequestSerializer(cancelled).data)
