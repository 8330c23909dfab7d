"""The drills API: start, list, read, report, acknowledge, re-run and remove rehearsals."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import Drill
from .scenarios import ScenarioInvalid, preset
from .serializers import DrillAckSerializer, DrillCreateSerializer, DrillReportSerializer, DrillSerializer

_ERRORS = {400: OpenApiResponse(description="invalid request"), 403: OpenApiResponse(description="not a team admin")}
_NOT_FOUND = {404: OpenApiResponse(description="not found")}


def _team_group(slug: str):
    from policies.models import Team

    team = Team.objects.select_related("group").filter(slug=slug).first()
    if team is None:
        raise ValidationError({"team": f"no team {slug!r}"})
    return team.group


class DrillListCreateApi(ListAPIView):
    """Drills of your teams; POST starts one (team admins), now or at ``scheduled_for``."""

    serializer_class = DrillSerializer

    def get_queryset(self):
        return services.drills_visible_to(user=self.request.user)

    @extend_schema(tags=["drills"])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=DrillCreateSerializer, responses={201: DrillSerializer, **_ERRORS}, tags=["drills"])
    def post(self, request: Request) -> Response:
        serializer = DrillCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            drill = services.drill_create(
                team=_team_group(data["team"]), user=request.user, name=data["name"],
                scenario=data["scenario"] if "scenario" in data else preset(data["preset"]), seed=data["seed"],
                scheduled_for=data.get("scheduled_for"), speed=data["speed"],
            )
        except ScenarioInvalid as exc:
            raise ValidationError({"scenario": str(exc)}) from exc
        except services.DrillRefused as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(DrillSerializer(drill).data, status=status.HTTP_201_CREATED)


def _visible_drill(request: Request, pk: int) -> Drill:
    drill = services.drills_visible_to(user=request.user).filter(pk=pk).first()
    if drill is None:
        raise NotFound("no such drill")
    return drill


# Each resource below is its own APIView: a sub-resource that subclassed the drill's view would
# also answer the drill's GET and DELETE (DELETE /report/ removed the drill).


class DrillDetailApi(APIView):
    """One drill; DELETE removes it and everything it made (team admins)."""

    @extend_schema(responses={200: DrillSerializer, **_NOT_FOUND}, tags=["drills"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(DrillSerializer(_visible_drill(request, pk)).data)

    @extend_schema(responses={204: None, 403: _ERRORS[403], **_NOT_FOUND}, tags=["drills"])
    def delete(self, request: Request, pk: int) -> Response:
        try:
            services.drill_remove(drill=_visible_drill(request, pk), user=request.user)
        except services.DrillRefused as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class DrillReportApi(APIView):
    """The drill's report as JSON (live while it runs; acknowledgements keep coming in after it ends)."""

    @extend_schema(responses={200: DrillReportSerializer, **_NOT_FOUND}, tags=["drills"])
    def get(self, request: Request, pk: int) -> Response:
        drill = _visible_drill(request, pk)
        report = services.drill_report(drill=drill) if drill.state != "scheduled" else {}
        if not report:
            raise NotFound("this drill has not started: no report yet")
        return Response(report)


class DrillRerunApi(APIView):
    """Run the drill again: same scenario, simulated start and seed, so the same result."""

    @extend_schema(request=None, responses={201: DrillSerializer, 403: _ERRORS[403], **_NOT_FOUND}, tags=["drills"])
    def post(self, request: Request, pk: int) -> Response:
        try:
            drill = services.drill_rerun(drill=_visible_drill(request, pk), user=request.user)
        except services.DrillRefused as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(DrillSerializer(drill).data, status=status.HTTP_201_CREATED)


class DrillAckApi(APIView):
    """Acknowledge one of the drill's notifications (the report shows who did, and how fast)."""

    @extend_schema(request=DrillAckSerializer, responses={201: None, 400: _ERRORS[400], **_NOT_FOUND}, tags=["drills"])
    def post(self, request: Request, pk: int) -> Response:
        serializer = DrillAckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.drill_ack(drill=_visible_drill(request, pk),
                               notification_id=serializer.validated_data["notification_id"], user=request.user)
        except services.DrillRefused as exc:
            raise ValidationError({"notification_id": str(exc)}) from exc
        return Response(status=status.HTTP_201_CREATED)
