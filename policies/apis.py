"""The policies API: teams and members, policy versions, usage, ledger, audit, claims, publications, inbox, data.

Views are thin: they parse input, ask the door (:mod:`policies.access`) or call
one service, and render. Service errors map to 400 (``PolicyInvalid``) and 403
(``PolicyForbidden``); things a user may not see answer 404, as if absent.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from . import access, clock, selectors, services
from .fields import MAX_ID
from .models import ClaimState, InboxNotification, PolicyDecision, PolicyVersion, Publication, Role, Team
from .serializers import (
    ClaimAcceptOverlapSerializer,
    ClaimConsentRequestSerializer,
    ClaimCreateSerializer,
    ClaimDetailSerializer,
    ClaimReleaseSerializer,
    ClaimSerializer,
    ContributorSerializer,
    DecisionSerializer,
    InboxNotificationSerializer,
    LedgerSerializer,
    MemberSerializer,
    MemberSetSerializer,
    PhotometryPointSerializer,
    PolicyChangeSerializer,
    PolicyPatchSerializer,
    PolicyVersionSerializer,
    PolicyVersionSummarySerializer,
    PublicationCreateSerializer,
    PublicationReportSerializer,
    PublicationSerializer,
    TeamCreateSerializer,
    TeamSerializer,
    UsageSerializer,
    version_payload,
)

E400 = OpenApiResponse(description="invalid input; nothing was changed")
E401 = OpenApiResponse(description="not authenticated")
E403 = OpenApiResponse(description="not allowed (e.g. not an admin of the team)")
E404 = OpenApiResponse(description="no such object, or not visible to you")
E409 = OpenApiResponse(description="the object's state does not allow it (e.g. the claim has ended)")
READ_ERRORS = {401: E401, 403: E403, 404: E404}
SEMESTER_PATTERN = r"^\d{4}[AB]$"
WRITE_ERRORS = {400: E400, 401: E401, 403: E403, 404: E404}


def _team(slug: str) -> Team:
    team = Team.objects.select_related("group").filter(slug=slug).first()
    if team is None:
        raise NotFound("no such team")
    return team


def _query(request: Request, name: str, *, choices: list[str] | None = None, pattern: str | None = None,
           integer: bool = False) -> Any:
    """A query parameter, validated as the schema describes it: absent -> None; present but invalid -> 400."""
    if name not in request.query_params:
        return None
    value = request.query_params[name]
    if not value.strip():
        raise ValidationError({name: "must not be empty"})
    if integer:
        if not re.fullmatch(r"-?\d+", value):
            raise ValidationError({name: "an integer id"})
        number = int(value)  # any integer is well-formed; an id that matches nothing finds nothing
        return number if 0 < number <= MAX_ID else 0
    if choices is not None and value not in choices:
        raise ValidationError({name: f"one of {', '.join(choices)}"})
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ValidationError({name: f"must match {pattern}"})
    return value


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pagination, but a malformed ``limit`` or ``offset`` is a 400, not silently ignored."""

    max_limit = 1000

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), MAX_ID // 2)  # past the end is an empty page, not a database error

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        for name in (self.limit_query_param, self.offset_query_param):
            if name in request.query_params and not re.fullmatch(r"-?\d+", request.query_params[name]):
                raise ValidationError({name: "an integer"})
        return super().paginate_queryset(queryset, request, view)  # a negative value falls back to the default


class _ServiceErrors:
    """Turns service errors into API answers: bad input 400, refusal 403."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.PolicyForbidden):
            exc = PermissionDenied(str(exc))
        elif isinstance(exc, services.PolicyConflict):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        elif isinstance(exc, services.PolicyInvalid):
            exc = ValidationError({"detail": str(exc)})
        return super().handle_exception(exc)  # type: ignore[misc]


# --- teams ------------------------------------------------------------------------------------


def _team_row(team: Team, user: Any, member_count: int) -> dict[str, Any]:
    version = selectors.policy_version_current(team=team)
    return {"slug": team.slug, "name": team.name, "description": team.description, "group_id": team.group_id,
            "member_count": member_count, "my_role": selectors.team_role_of(user=user, team=team),
            "policy_version": version.number if version else None}


class TeamListCreateApi(_ServiceErrors, APIView):
    """Every team of the network, with your role in each; staff may create a team."""

    @extend_schema(responses={200: TeamSerializer(many=True), 401: E401}, tags=["teams"])
    def get(self, request: Request) -> Response:
        teams = Team.objects.select_related("group").annotate(n=Count("group__user")).order_by("slug")
        return Response(TeamSerializer([_team_row(t, request.user, t.n) for t in teams], many=True).data)

    @extend_schema(request=TeamCreateSerializer, responses={201: TeamSerializer, **WRITE_ERRORS}, tags=["teams"])
    def post(self, request: Request) -> Response:
        if not (request.user.is_staff or request.user.is_superuser):
            raise PermissionDenied("only staff may create teams")
        body = TeamCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        admins = list(get_user_model().objects.filter(pk__in=body.validated_data["admins"], is_active=True))
        if len(admins) != len(set(body.validated_data["admins"])):
            raise ValidationError({"admins": "unknown or inactive user"})
        team = services.team_create(name=body.validated_data["name"], slug=body.validated_data["slug"],
                                    description=body.validated_data["description"], admins=admins, by=request.user)
        return Response(TeamSerializer(_team_row(team, request.user, len(admins))).data, status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    """One team."""

    @extend_schema(responses={200: TeamSerializer, **READ_ERRORS}, tags=["teams"])
    def get(self, request: Request, slug: str) -> Response:
        team = _team(slug)
        return Response(TeamSerializer(_team_row(team, request.user, team.group.user_set.count())).data)


def _require_member(request: Request, team: Team) -> None:
    if not (request.user.is_superuser or selectors.team_role_of(user=request.user, team=team)):
        raise PermissionDenied("only the team's members may see this")


class TeamMembersApi(_ServiceErrors, APIView):
    """The team's members and their roles (members only); an admin adds a member or changes a role."""

    @extend_schema(responses={200: MemberSerializer(many=True), **READ_ERRORS}, tags=["teams"])
    def get(self, request: Request, slug: str) -> Response:
        team = _team(slug)
        _require_member(request, team)
        rows = [{"user_id": u.pk, "username": u.get_username(), "name": u.get_full_name(), "role": role}
                for u, role in selectors.team_members(team=team)]
        return Response(MemberSerializer(rows, many=True).data)

    @extend_schema(request=MemberSetSerializer, responses={200: MemberSerializer, **WRITE_ERRORS}, tags=["teams"])
    def post(self, request: Request, slug: str) -> Response:
        team = _team(slug)
        if not (request.user.is_superuser or selectors.team_is_admin(user=request.user, team=team)):
            raise PermissionDenied("only the team's admins may manage its members")
        body = MemberSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=body.validated_data["username"]).first()
        if user is None:
            raise NotFound("no such user")
        membership = services.team_member_set(team=team, user=user, role=body.validated_data["role"], by=request.user)
        return Response(MemberSerializer({"user_id": user.pk, "username": user.get_username(), "name": user.get_full_name(),
                                          "role": membership.role}).data)


class TeamMemberApi(_ServiceErrors, APIView):
    """Remove a member (an admin removes anyone; a member may leave)."""

    @extend_schema(responses={204: None, **WRITE_ERRORS}, tags=["teams"])
    def delete(self, request: Request, slug: str, user_id: int) -> Response:
        team = _team(slug)
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None or selectors.team_role_of(user=user, team=team) is None:
            raise NotFound("no such member")
        services.team_member_remove(team=team, user=user, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- policies ---------------------------------------------------------------------------------


def _version_response(request: Request, version: PolicyVersion) -> Response:
    parts = access.policy_parts_readable(user=request.user, team_group_id=version.team.group_id)
    return Response(PolicyVersionSerializer(version_payload(version, parts)).data)


class PolicyApi(_ServiceErrors, APIView):
    """The team's policy in force (the parts you may read); its admins change it, making a new version."""

    @extend_schema(responses={200: PolicyVersionSerializer, **READ_ERRORS}, tags=["policies"])
    def get(self, request: Request, slug: str) -> Response:
        team = _team(slug)
        version = selectors.policy_version_current(team=team)
        if version is None:
            raise NotFound("the team has no policy version yet")
        return _version_response(request, version)

    def _change(self, request: Request, slug: str, *, partial: bool) -> Response:
        team = _team(slug)
        if not selectors.team_is_admin(user=request.user, team=team):
            raise PermissionDenied("only the team's admins may change its policy")
        body = (PolicyPatchSerializer if partial else PolicyChangeSerializer)(data=request.data, context={"team": team})
        body.is_valid(raise_exception=True)
        raw = request.data if isinstance(request.data, dict) else {}
        document: dict[str, Any] = dict(raw.get("document") or {})
        if partial:
            current = selectors.policy_version_current(team=team)
            if current is not None and not body.validated_data["document"]:
                return _version_response(request, current)  # nothing to change: no new version
            document = services.policy_merge(current=current.document if current else {}, changes=body.validated_data["document"])
        version = services.policy_update(team=team, by=request.user, document=document, comment=body.validated_data["comment"])
        response = _version_response(request, version)
        response.status_code = status.HTTP_201_CREATED
        return response

    @extend_schema(request=PolicyChangeSerializer, responses={201: PolicyVersionSerializer, **WRITE_ERRORS}, tags=["policies"])
    def put(self, request: Request, slug: str) -> Response:
        return self._change(request, slug, partial=False)

    @extend_schema(request=PolicyPatchSerializer, responses={201: PolicyVersionSerializer, 200: PolicyVersionSerializer, **WRITE_ERRORS},
                   tags=["policies"])
    def patch(self, request: Request, slug: str) -> Response:
        return self._change(request, slug, partial=True)


class PolicyVersionListApi(APIView):
    """Every version of the team's policy, newest first (old versions stay readable)."""

    @extend_schema(responses={200: PolicyVersionSummarySerializer(many=True), **READ_ERRORS}, tags=["policies"])
    def get(self, request: Request, slug: str) -> Response:
        team = _team(slug)
        rows = [{"number": v.number, "created_at": v.created_at,
                 "created_by": v.created_by.get_username() if v.created_by else None, "comment": v.comment}
                for v in team.policy_versions.select_related("created_by").order_by("-number")]
        return Response(PolicyVersionSummarySerializer(rows, many=True).data)


class PolicyVersionDetailApi(APIView):
    """One version of the team's policy (the parts you may read)."""

    @extend_schema(responses={200: PolicyVersionSerializer, **READ_ERRORS}, tags=["policies"])
    def get(self, request: Request, slug: str, number: int) -> Response:
        team = _team(slug)
        version = team.policy_versions.select_related("created_by", "team").filter(number=number).first()
        if version is None:
            raise NotFound("no such version")
        return _version_response(request, version)


# --- usage, ledger, audit -------------------------------------------------------------------------


class UsageApi(APIView):
    """The team's allocations in a semester with the hours used, and its usage entries (members only)."""

    @extend_schema(
        parameters=[OpenApiParameter("semester", str, description="e.g. 2026A; default: the current one", pattern=SEMESTER_PATTERN)],
        responses={200: UsageSerializer, **{400: E400, **READ_ERRORS}}, tags=["policies"],
    )
    def get(self, request: Request, slug: str) -> Response:
        team = _team(slug)
        _require_member(request, team)
        semester = _query(request, "semester", pattern=SEMESTER_PATTERN)
        rows = selectors.usage_summary(team=team, semester=semester)
        semester = semester or selectors.semester_of(clock.now())
        allocations = [{**r.allocation.to_json(), "used_hours": r.used_hours, "remaining_hours": r.remaining_hours} for r in rows]
        entries = team.group.baton_usage.filter(semester=semester).order_by("-at")[:500]
        return Response(UsageSerializer({"semester": semester, "allocations": allocations,
                                         "entries": list(entries)}).data)


class LedgerApi(APIView):
    """The team's contribution ledger: balance, priority factor, totals and recent entries (network members)."""

    @extend_schema(responses={200: LedgerSerializer, **READ_ERRORS}, tags=["policies"])
    def get(self, request: Request, slug: str) -> Response:
        team = _team(slug)
        if not (request.user.is_superuser or selectors.team_group_ids_of(user=request.user)):
            raise PermissionDenied("the ledger is open to the network's teams")
        totals = selectors.ledger_totals(team=team.group)
        entries = team.group.baton_ledger.select_related("policy_version").order_by("-at", "-pk")[:200]
        return Response(LedgerSerializer({
            "team": team.slug, "balance": totals["balance"], "totals": totals,
            "priority_factor": services.team_priority_factor(team=team.group),
            "entries": list(entries),
        }).data)


class AuditApi(ListAPIView):
    pagination_class = StrictLimitOffsetPagination

    """The decisions the team's policy made, newest first, each with the version that made it (team admins)."""

    serializer_class = DecisionSerializer

    def get_queryset(self) -> QuerySet:
        team = _team(self.kwargs["slug"])
        if not (self.request.user.is_superuser or selectors.team_is_admin(user=self.request.user, team=team)):
            raise PermissionDenied("only the team's admins may read its audit trail")
        return selectors.decisions_for(team=team, action=_query(self.request, "action", choices=PolicyDecision.Action.values))

    @extend_schema(parameters=[OpenApiParameter("action", str, enum=PolicyDecision.Action.values)],
                   responses={200: DecisionSerializer(many=True), **{400: E400, **READ_ERRORS}}, tags=["policies"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- claims -----------------------------------------------------------------------------------


def _claim_context(request: Request, claims: list[Any]) -> dict[str, Any]:
    target_ids = {c.target_id for c in claims if c.target_id}
    visible = set(access.targets_visible_to(user=request.user).filter(pk__in=target_ids).values_list("pk", flat=True))
    return {"visible_target_ids": visible}


def _visible_claim(request: Request, pk: int) -> Any:
    claim = access.claims_visible_to(user=request.user).filter(pk=pk).first()
    if claim is None:
        raise NotFound("no such claim")
    return claim


def _target(request: Request, pk: int | None) -> Target | None:
    if pk is None:
        return None
    target = Target.objects.filter(pk=pk).first()
    if target is None or not access.target_visible_to(user=request.user, target=target):
        raise NotFound("no such target")
    return target


def _acting_team(request: Request, slug: str, *, roles: tuple[str, ...] = (Role.ADMIN, Role.MEMBER)) -> Team:
    """The team named in a request body, if the user may act for it: unknown 404, not allowed 403."""
    team = _team(slug)
    if selectors.team_role_of(user=request.user, team=team) not in roles:
        raise PermissionDenied(f"you may not act for {team}")
    return team


class ClaimListCreateApi(_ServiceErrors, ListAPIView):
    pagination_class = StrictLimitOffsetPagination

    """Claims you may see (filter by state, team, target); POST proposes a claim for one of your teams."""

    serializer_class = ClaimSerializer

    def get_queryset(self) -> QuerySet:
        qs = access.claims_visible_to(user=self.request.user)
        if (state := _query(self.request, "state", choices=ClaimState.values)) is not None:
            qs = qs.filter(state=state)
        if (team := _query(self.request, "team")) is not None:
            qs = qs.filter(team__baton_team__slug=team)
        if (target := _query(self.request, "target", integer=True)) is not None:
            qs = qs.filter(target_id=target)
        return qs.order_by("-created_at", "-pk")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), **_claim_context(self.request, list(self.get_queryset()[:1000]))}

    @extend_schema(
        parameters=[OpenApiParameter("state", str, enum=ClaimState.values), OpenApiParameter("team", str),
                    OpenApiParameter("target", int)],
        responses={200: ClaimSerializer(many=True), 400: E400, 401: E401}, tags=["claims"],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=ClaimCreateSerializer, responses={201: ClaimDetailSerializer, **WRITE_ERRORS}, tags=["claims"])
    def post(self, request: Request) -> Response:
        body = ClaimCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        team = _acting_team(request, data.pop("team"))
        data["target"] = _target(request, data.pop("target"))
        claim = services.claim_propose(team=team.group, by=request.user, **data)
        return Response(ClaimDetailSerializer(claim, context=_claim_context(request, [claim])).data, status=status.HTTP_201_CREATED)


class ClaimDetailApi(APIView):
    """One claim with its agreements, state history and conflicts."""

    @extend_schema(responses={200: ClaimDetailSerializer, **READ_ERRORS}, tags=["claims"])
    def get(self, request: Request, pk: int) -> Response:
        claim = _visible_claim(request, pk)
        return Response(ClaimDetailSerializer(claim, context=_claim_context(request, [claim])).data)


class ClaimReleaseApi(_ServiceErrors, APIView):
    """The claiming team gives the claim up."""

    @extend_schema(request=ClaimReleaseSerializer, responses={200: ClaimDetailSerializer, 409: E409, **WRITE_ERRORS}, tags=["claims"])
    def post(self, request: Request, pk: int) -> Response:
        claim = _visible_claim(request, pk)
        body = ClaimReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        claim = services.claim_release(claim=claim, by=request.user, reason=body.validated_data["reason"])
        return Response(ClaimDetailSerializer(claim, context=_claim_context(request, [claim])).data)


class ClaimConsentApi(_ServiceErrors, APIView):
    """A team asked to agree (it owns the claimed target) agrees or declines (its admins)."""

    @extend_schema(request=ClaimConsentRequestSerializer, responses={200: ClaimDetailSerializer, 409: E409, **WRITE_ERRORS}, tags=["claims"])
    def post(self, request: Request, pk: int) -> Response:
        claim = _visible_claim(request, pk)
        body = ClaimConsentRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        team = _acting_team(request, body.validated_data["team"], roles=(Role.ADMIN,))
        claim = services.claim_consent(claim=claim, team=team.group, by=request.user, agree=body.validated_data["agree"])
        return Response(ClaimDetailSerializer(claim, context=_claim_context(request, [claim])).data)


class ClaimAcceptOverlapApi(_ServiceErrors, APIView):
    """The team with the earlier claim accepts that an overlapping claim coexists (its admins)."""

    @extend_schema(request=ClaimAcceptOverlapSerializer, responses={200: ClaimDetailSerializer, 409: E409, **WRITE_ERRORS}, tags=["claims"])
    def post(self, request: Request, pk: int) -> Response:
        claim = _visible_claim(request, pk)
        body = ClaimAcceptOverlapSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        other = access.claims_visible_to(user=request.user).filter(pk=body.validated_data["other_claim"]).first()
        if other is None:
            raise NotFound("no such claim")
        claim = services.claim_conflict_resolve(claim=claim, other=other, by=request.user)
        return Response(ClaimDetailSerializer(claim, context=_claim_context(request, [claim])).data)


class ClaimContributorsApi(APIView):
    """Teams that gave data or telescope time to the claim's targets: candidates for co-authorship."""

    @extend_schema(responses={200: ContributorSerializer(many=True), **READ_ERRORS}, tags=["claims"])
    def get(self, request: Request, pk: int) -> Response:
        claim = _visible_claim(request, pk)
        rows = [{"team": c.team.name, "data_points": c.data, "first_acquired": c.first_acquired, "last_acquired": c.last_acquired,
                 "hours": c.hours} for c in services.claim_contributors(claim=claim)]
        return Response(ContributorSerializer(rows, many=True).data)


# --- publications -----------------------------------------------------------------------------


class PublicationListCreateApi(_ServiceErrors, ListAPIView):
    pagination_class = StrictLimitOffsetPagination

    """Publications of your teams; POST reports one (checked against other teams' exclusive claims)."""

    serializer_class = PublicationSerializer

    def get_queryset(self) -> QuerySet:
        qs = Publication.objects.select_related("team")
        if self.request.user.is_superuser:
            return qs
        return qs.filter(team_id__in=selectors.team_group_ids_of(user=self.request.user))

    @extend_schema(responses={200: PublicationSerializer(many=True), 401: E401}, tags=["claims"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=PublicationCreateSerializer, responses={201: PublicationReportSerializer, **WRITE_ERRORS}, tags=["claims"])
    def post(self, request: Request) -> Response:
        body = PublicationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        team = _acting_team(request, data.pop("team"))
        data["target"] = _target(request, data.pop("target"))
        publication, violated = services.publication_report(team=team.group, by=request.user, **data)
        return Response(PublicationReportSerializer({"publication": publication,
                                                     "violated_claims": [c.pk for c in violated]}).data,
                        status=status.HTTP_201_CREATED)


# --- inbox and data ---------------------------------------------------------------------------


class InboxApi(ListAPIView):
    pagination_class = StrictLimitOffsetPagination

    """Your notifications, newest first."""

    serializer_class = InboxNotificationSerializer

    def get_queryset(self) -> QuerySet:
        return InboxNotification.objects.filter(recipient_id=self.request.user.pk).select_related("team")

    @extend_schema(responses={200: InboxNotificationSerializer(many=True), 401: E401}, tags=["policies"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class PhotometryCSVRenderer(BaseRenderer):
    """Renders a list of flat rows as CSV (``?format=csv`` or ``Accept: text/csv``)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if not isinstance(data, list):  # an error body
            data = [data] if isinstance(data, dict) else [{"detail": str(data)}]
        fields = list(data[0]) if data else list(PhotometryPointSerializer().fields)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(data)
        return buffer.getvalue().encode(self.charset)


class PhotometryExportApi(APIView):
    """A target's light curve as you may see it (through the door): JSON, or CSV with ``?format=csv``."""

    renderer_classes = [JSONRenderer, PhotometryCSVRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # Checked before DRF negotiates: it ignores an empty format and answers an unknown one 404.
        if not force:  # force: rendering an error, after this refused
            _query(request, "format", choices=["json", "csv"])
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        parameters=[OpenApiParameter("target", int, required=True)],
        responses={200: PhotometryPointSerializer(many=True), **{400: E400, **READ_ERRORS}},
        tags=["data"],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        target_id = _query(request, "target", integer=True)
        if target_id is None:
            raise ValidationError({"target": "required"})
        target = Target.objects.filter(pk=target_id).first()
        if target is None or not access.target_visible_to(user=request.user, target=target):
            raise NotFound("no such target")
        points = access.reduced_data_visible_to(user=request.user, model=PhotometryReducedDatum, target=target).order_by("timestamp", "pk")
        response = Response(PhotometryPointSerializer(points, many=True).data)
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="photometry-{target.pk}.csv"'
        return response
