"""The ledger and vetting API: keyset pages of a team's selection-function ledger, its counts per
reason, streamed CSV/Parquet exports, labels, and the team's training set."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import Group
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from candidates import ledger, selectors, services
from candidates.exports import csv_stream, parquet_stream
from candidates.models import Candidate
from candidates.serializers import (
    ErrorSerializer,
    LabelSerializer,
    LabelWriteSerializer,
    LedgerExportQuerySerializer,
    LedgerPageQuerySerializer,
    LedgerPageSerializer,
    LedgerQuerySerializer,
    LedgerSummarySerializer,
    TrainingExportQuerySerializer,
)

_400 = OpenApiResponse(description="invalid input: {field: [messages]} or {detail}")
_401 = OpenApiResponse(ErrorSerializer, description="not authenticated")
_403 = OpenApiResponse(ErrorSerializer, description="not a member of that team")
_FILES = {
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV, header first"),
    (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY, description="Parquet (zstd)"),
    400: _400, 401: _401, 403: _403,
}  # fmt: skip
MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def ledger_scope(*, user: Any, team_id: int | None, mine: bool) -> ledger.Scope:
    """The ledger scope a user asked for: a team they belong to (else PermissionDenied), or their own."""
    if mine:
        return ledger.Scope(owner_id=user.pk)
    if team_id not in selectors.team_ids_of(user=user):
        raise PermissionDenied("only the team's members may read its ledger")
    return ledger.Scope(team_id=team_id)


def file_response(*, rows: Iterable[Sequence[Any]], columns: Sequence[str], fmt: str, name: str) -> StreamingHttpResponse:
    """A streamed CSV or Parquet download of ``rows``."""
    body: Iterator[bytes] = csv_stream(columns, rows) if fmt == "csv" else parquet_stream(columns, rows)
    response = StreamingHttpResponse(body, content_type=MEDIA[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


class _AnyAccept(BaseContentNegotiation):
    """Downloads answer in the format asked by ``?format=``, whatever the Accept header says
    (errors are JSON)."""

    def select_parser(self, request: Any, parsers: Iterable[Any]) -> Any:
        return next(iter(parsers), None)

    def select_renderer(self, request: Any, renderers: Iterable[Any], format_suffix: str | None = None) -> Any:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def _query(serializer_class: type, request: Request) -> dict[str, Any]:
    # A plain dict, not the QueryDict: DRF reads an empty optional "?end=" in a QueryDict as absent.
    data = serializer_class(data=request.query_params.dict())
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


class LedgerApi(APIView):
    """A team's selection-function ledger for candidates ingested in [start, end): one row per
    candidate, in candidate-id order, a page at a time (keyset: pass the page's ``next_after`` as
    ``after``). Every candidate of the period appears, with its final reason."""

    @extend_schema(parameters=[LedgerPageQuerySerializer], responses={200: LedgerPageSerializer, 400: _400, 401: _401,
                                                                      403: _403}, tags=["ledger"])
    def get(self, request: Request) -> Response:
        q = _query(LedgerPageQuerySerializer, request)
        scope = ledger_scope(user=request.user, team_id=q.get("team"), mine=q["mine"])
        try:
            rows = ledger.ledger_page(scope=scope, start=q["start"], end=q["end"], after=q["after"], limit=q["limit"])
        except ledger.LedgerInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        next_after = rows[-1]["candidate_id"] if len(rows) == q["limit"] else None
        next_url = None
        if next_after is not None:
            params = request.query_params.copy()
            params["after"] = str(next_after)
            next_url = request.build_absolute_uri(request.path) + "?" + urlencode(sorted(params.items()))
        return Response({"results": rows, "next_after": next_after, "next": next_url})


class LedgerSummaryApi(APIView):
    """Candidates ingested in [start, end) per final reason; the counts add up to the total."""

    @extend_schema(parameters=[LedgerQuerySerializer], responses={200: LedgerSummarySerializer, 400: _400, 401: _401,
                                                                  403: _403}, tags=["ledger"])
    def get(self, request: Request) -> Response:
        q = _query(LedgerQuerySerializer, request)
        scope = ledger_scope(user=request.user, team_id=q.get("team"), mine=q["mine"])
        counts = ledger.ledger_counts(scope=scope, start=q["start"], end=q["end"])
        return Response({"total": sum(counts.values()), "reasons": counts})


class LedgerExportApi(APIView):
    """The ledger for a period as one streamed file: CSV, or Parquet in row groups of 20,000."""

    content_negotiation_class = _AnyAccept

    @extend_schema(parameters=[LedgerExportQuerySerializer], responses=_FILES, tags=["ledger"])
    def get(self, request: Request) -> StreamingHttpResponse:
        q = _query(LedgerExportQuerySerializer, request)
        scope = ledger_scope(user=request.user, team_id=q.get("team"), mine=q["mine"])
        rows = ledger.ledger_rows(scope=scope, start=q["start"], end=q["end"])
        who = f"team{scope.team_id}" if scope.team_id is not None else "mine"
        return file_response(rows=rows, columns=ledger.COLUMNS, fmt=q["format"],
                             name=f"ledger-{who}-{_stamp(q['start'])}-{_stamp(q['end'])}")


class LabelApi(APIView):
    """Label a candidate for one of your teams (real/bogus, a class, a note). One current label per
    candidate, team and user: labelling again replaces yours (200); a first label is 201."""

    @extend_schema(request=LabelWriteSerializer, responses={201: LabelSerializer, 200: LabelSerializer, 400: _400,
                                                            401: _401, 403: _403, 404: OpenApiResponse(ErrorSerializer)},
                   tags=["ledger"])
    def post(self, request: Request) -> Response:
        data = LabelWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["team"] not in selectors.team_ids_of(user=request.user):
            raise PermissionDenied("you are not a member of that team")
        candidate = Candidate.objects.filter(pk=v["candidate"]).only("id").first()
        if candidate is None:
            raise NotFound("no such candidate")
        try:
            label, created = services.label_set(
                candidate=candidate, team=Group.objects.get(pk=v["team"]), user=request.user, verdict=v["verdict"],
                label_class=v["label_class"], note=v["note"],
            )
        except services.LabelRefused as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.LabelInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TrainingSetExportApi(APIView):
    """The team's labelled candidates with their features, as a training set for a classifier
    (CSV or Parquet, streamed): one row per candidate, the team's current label and how many
    members said real and bogus."""

    content_negotiation_class = _AnyAccept

    @extend_schema(parameters=[TrainingExportQuerySerializer], responses=_FILES, tags=["ledger"])
    def get(self, request: Request) -> StreamingHttpResponse:
        q = _query(TrainingExportQuerySerializer, request)
        scope = ledger_scope(user=request.user, team_id=q["team"], mine=False)
        assert scope.team_id is not None  # noqa: S101 - a team scope
        rows = ledger.training_rows(team_id=scope.team_id, start=q.get("start"), end=q.get("end"))
        return file_response(rows=rows, columns=ledger.TRAINING_COLUMNS, fmt=q["format"],
                             name=f"training-team{scope.team_id}")
