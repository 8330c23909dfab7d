"""The selection-function ledger: a burst of alerts through ingest, a team with filters, a watch
region and trigger rules whose requests go through the real scheduler (allocation, planner), and
a ledger that accounts for every candidate; its exports read back to the same rows; access and
bad input are refused."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from candidates import ledger
from candidates.models import FiringStatus, LedgerEntry, TeamRequestDefaults, TriggerFiring, TriggerRule
from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create, region_create, trigger_fire
from observatories.scheduling.models import ObservingRequest, RequestState
from observatories.scheduling.services import network_plan
from observatories.scheduling.services.lifecycle import request_transition
from policies.selectors import semester_of
from policies.services import team_create

from .conftest import JSON, generic_alert, json_body

pytestmark = pytest.mark.django_db

REGION = (150.0, 2.0)


def policy_document(now: Any) -> dict[str, Any]:
    """Plenty of 1m0 time this semester, none on any other class (a request for one is refused)."""
    allocation = {"facility_class": "1m0", "facility_code": "", "semester": semester_of(now), "hours": 1000}
    return {"schema": 1, "sharing": {}, "publication": {"guidelines": "", "claims_need_agreement": True},
            "time": {"overrun_action": "refuse", "unallocated_action": "refuse", "allocations": [allocation]},
            "notifications": []}


def burst() -> list[dict[str, Any]]:
    """24 objects over the sky (17-21.6 mag, bands g/r/i, a classifier score), 4 in the watch region
    (faint), and a second alert of four objects."""
    alerts = []
    for i in range(24):
        alerts.append(generic_alert(
            alert_id=f"a{i}", object_id=f"OBJ-{i}", ra=10.0 + 14.0 * i, dec=-50.0 + 4.0 * i, mag=17.0 + 0.2 * i,
            band="gri"[i % 3], time="2026-06-01T03:00:00Z",
            classifications=[{"classifier": "rb", "version": "1", "class": "real", "score": (i % 10) / 10}],
        ))  # fmt: skip
    for k in range(4):
        alerts.append(generic_alert(alert_id=f"reg{k}", object_id=f"REG-{k}", ra=REGION[0] + 0.05 * k,
                                    dec=REGION[1] - 0.05 * k, mag=20.5, band="r", time="2026-06-01T03:10:00Z"))
    for i in range(4):
        alerts.append(generic_alert(alert_id=f"a{i}-again", object_id=f"OBJ-{i}", ra=10.0 + 14.0 * i,
                                    dec=-50.0 + 4.0 * i, mag=17.1, band="gri"[i % 3], time="2026-06-01T04:00:00Z"))
    return alerts


@pytest.fixture
def world(user: Any, django_user_model: Any) -> dict[str, Any]:
    now = timezone.now()
    team = team_create(name="Ledger team", admins=[user], document=policy_document(now)).group
    TeamRequestDefaults.objects.create(team=team, defaults={
        "telescope_class": "1m0", "window_hours": 48, "exposures": [{"filter": "rp", "exposure_s": 60, "count": 1}]})
    bright = filter_create(name="bright", team=team, predicates=[
        {"field": "mag", "op": "<=", "value": 19.0}, {"field": "band", "op": "in", "value": ["g", "r"]}])
    scored = filter_create(name="scored", team=team, predicates=[
        {"field": "score", "classifier": "rb", "class": "real", "op": ">=", "value": 0.75}])
    region = region_create(name="field", kind="cone", team=team, spec={"ra": REGION[0], "dec": REGION[1], "radius": 0.5})
    rules = {
        "bright": TriggerRule.objects.create(team=team, name="bright ones", filter=bright),
        "region": TriggerRule.objects.create(team=team, name="field on 2 m", region=region,
                                             request_defaults={"telescope_class": "2m0"}),
        "scored": TriggerRule.objects.create(team=team, name="scored on nothing", filter=scored,
                                             request_defaults={"telescope_class": "9m9"}),
    }
    # Another team's filter passes everything: it must not count for this team.
    outsider = django_user_model.objects.create_user(username="mallory", password="another pass phrase 7")
    other = team_create(name="other team", admins=[outsider]).group
    filter_create(name="everything", team=other, predicates=[])

    start = now - timedelta(seconds=1)
    parsed = parse_alert_batch(body=json_body(*burst()), content_type=JSON, broker="ztf")
    assert parsed.errors == []
    result = alerts_ingest(alerts=parsed.alerts, received_at=now, now=now, chunk_size=10)  # several chunks
    for firing in TriggerFiring.objects.filter(status=FiringStatus.PENDING):
        trigger_fire(firing_id=firing.pk)  # the real request factory: scheduling's request_submit
    network_plan()
    requests = list(ObservingRequest.objects.order_by("pk"))
    assert requests, "the bright rule made requests"
    observed = requests[0]
    if observed.state == RequestState.PENDING:
        request_transition(request_id=observed.pk, to=RequestState.PLANNED)
    request_transition(request_id=observed.pk, to=RequestState.COMPLETED)
    return {"team": team, "outsider": outsider, "result": result, "start": start,
            "end": timezone.now() + timedelta(seconds=1), "rules": rules, "observed": observed}


def period(world: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"team": world["team"].pk, "start": world["start"].isoformat(), "end": world["end"].isoformat(), **extra}


def expected_reason(firing: TriggerFiring | None, request: ObservingRequest | None) -> str:
    """What the ledger should say for a candidate that passed, from the rows themselves."""
    if firing is None:
        return "passed_not_triggered"
    if firing.status == FiringStatus.FAILED:
        if firing.error.startswith("RequestInvalid: allocation:"):
            return "over_allocation"
        return "trigger_refused" if firing.error.startswith("RequestInvalid:") else "trigger_failed"
    assert request is not None
    if request.state == RequestState.COMPLETED:
        return "observed"
    by_outcome = {"never visible": "never_visible", "window too short": "window_too_short", "outranked": "outranked"}
    if request.plan_outcome in by_outcome:
        return by_outcome[request.plan_outcome]
    if request.state in (RequestState.EXPIRED, RequestState.FAILED, RequestState.CANCELLED):
        return "not_observed"
    return "request_pending" if not request.plan_outcome else "planned_pending"


def test_the_ledger_accounts_for_every_candidate(world: dict[str, Any], api_client: Any) -> None:
    result = world["result"]
    assert result.stored == 32 == LedgerEntry.objects.count()

    summary = api_client.get("/api/candidates/ledger/summary/", period(world))
    assert summary.status_code == 200, summary.content
    body = summary.json()
    assert body["total"] == result.stored == sum(body["reasons"].values())
    assert set(body["reasons"]) == set(ledger.REASONS)

    rows = {r["candidate_id"]: r for r in api_client.get("/api/candidates/ledger/", period(world, limit=100)).json()["results"]}
    assert sorted(rows) == sorted(result.candidate_ids)
    by_alert = {r["alert_id"]: r for r in rows.values()}
    counted: dict[str, int] = {}
    for r in rows.values():
        counted[r["reason"]] = counted.get(r["reason"], 0) + 1
    assert counted == {k: v for k, v in body["reasons"].items() if v}

    # Filters: the first failing clause, with the filter's version.
    faint = json.loads(by_alert["a15"]["filters"])  # mag 20.0, band g
    assert {"filter": faint[0]["filter"], "name": "bright", "version": 1, "passed": False, "failed_clause": 0,
            "clause": "mag <= 19"} == faint[0]
    wrong_band = {f["name"]: f for f in json.loads(by_alert["a2"]["filters"])}["bright"]  # mag 17.4, band i
    assert (wrong_band["passed"], wrong_band["failed_clause"], wrong_band["clause"]) == (False, 1, "band in [g, r]")
    assert {f["name"]: f["passed"] for f in json.loads(by_alert["a0"]["filters"])} == {"bright": True, "scored": False}
    assert all(f["name"] != "everything" for r in rows.values() for f in json.loads(r["filters"]))
    # Regions: inside or outside, with the region's version.
    assert json.loads(by_alert["reg1"]["regions"])[0] | {"region": 0} == {"region": 0, "name": "field", "version": 1,
                                                                          "inside": True}
    assert json.loads(by_alert["a5"]["regions"])[0]["inside"] is False

    # Filtered out: passed nothing of the team's.
    assert by_alert["a16"]["reason"] == "filtered_out" and by_alert["a16"]["trigger"] == ""  # 20.2 mag, score 0.6
    # The region's rule asks for 2 m time the team has none of: over allocation.
    region_rows = [by_alert[f"reg{k}"] for k in range(4)]
    assert {r["reason"] for r in region_rows} == {"over_allocation"}
    assert all(r["trigger"] == "refused" and "allocation" in r["trigger_error"] for r in region_rows)
    # A rule whose requests the scheduler refuses (no such telescope class).
    assert by_alert["a18"]["reason"] == "trigger_refused"  # 20.6 mag: only "scored" (0.8) passed
    # Second alerts of objects already triggered.
    assert {by_alert[f"a{i}-again"]["reason"] for i in (0, 1)} == {"already_triggered"}
    assert by_alert["a0-again"]["trigger"] == "already_triggered"

    # Every candidate that passed: the reason follows from its firing and request, as the rows say.
    for r in rows.values():
        if r["reason"] in ("filtered_out", "already_triggered"):
            continue
        firings = TriggerFiring.objects.filter(candidate_id=r["candidate_id"], rule__team=world["team"])
        firing = sorted(firings, key=lambda f: (f.status != FiringStatus.REQUESTED, f.pk))[0] if firings else None
        request = ObservingRequest.objects.filter(pk=int(firing.request_ref)).first() \
            if firing is not None and firing.request_ref else None
        assert r["reason"] == expected_reason(firing, request), r
        if request is not None:
            assert (r["request_id"], r["planner_outcome"], r["observation"]) == (request.pk, request.plan_outcome,
                                                                                 request.state)
    assert rows_for_request(rows, world["observed"].pk)["reason"] == "observed"


def rows_for_request(rows: dict[int, dict[str, Any]], request_id: int) -> dict[str, Any]:
    return next(r for r in rows.values() if r["request_id"] == request_id)


def test_exports_read_back_to_the_same_rows(world: dict[str, Any], api_client: Any) -> None:
    pages, after = [], 0
    while True:
        page = api_client.get("/api/candidates/ledger/", period(world, limit=7, after=after))
        assert page.status_code == 200
        body = page.json()
        pages += body["results"]
        if body["next_after"] is None:
            break
        assert body["next"] and f"after={body['next_after']}" in body["next"]
        after = body["next_after"]
    assert len(pages) == world["result"].stored and len({r["candidate_id"] for r in pages}) == len(pages)
    assert [r["candidate_id"] for r in pages] == sorted(r["candidate_id"] for r in pages)

    response = api_client.get("/api/candidates/ledger/export/", period(world, format="csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    from_csv = list(csv.DictReader(io.StringIO(text)))
    assert list(from_csv[0]) == list(ledger.COLUMNS)

    response = api_client.get("/api/candidates/ledger/export/", period(world, format="parquet"))
    assert response.status_code == 200 and response["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    from_parquet = table.to_pylist()
    assert table.column_names == list(ledger.COLUMNS)

    assert len(from_csv) == len(from_parquet) == len(pages)
    for api_row, csv_row, pq_row in zip(pages, from_csv, from_parquet, strict=True):
        for column in ("candidate_id", "alert_id", "filters", "regions", "trigger", "planner_outcome", "observation",
                       "label", "reason", "filters_passed"):
            assert str(api_row[column]) == csv_row[column] == str(pq_row[column]), column
        assert pq_row["mag"] == api_row["mag"] and pq_row["ra"] == api_row["ra"]
        assert pq_row["time"].isoformat() == csv_row["time"]


def test_only_members_read_a_team_ledger(world: dict[str, Any], client: Any) -> None:
    from rest_framework.test import APIClient

    outsider = APIClient()
    outsider.force_authenticate(world["outsider"])
    for path in ("/api/candidates/ledger/", "/api/candidates/ledger/summary/", "/api/candidates/ledger/export/"):
        assert outsider.get(path, period(world)).status_code == 403
        assert APIClient().get(path, period(world)).status_code in (401, 403)
    assert outsider.get("/api/candidates/labels/training-set/", {"team": world["team"].pk}).status_code == 403
    client.force_login(world["outsider"])
    refused = client.get("/candidates/ledger/", {"team": world["team"].pk})
    # TOM's Raise403Middleware turns a page's 403 into a redirect to the login page.
    assert refused.status_code == 302 and refused["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("bad", [
    {"start": None}, {"end": "2020-01-01T00:00:00Z"}, {"start": "yesterday"}, {"team": "abc"}, {"team": None},
    {"limit": 0}, {"limit": 5001}, {"after": -1}, {"mine": "true"},
])  # fmt: skip
def test_bad_parameters_are_400(world: dict[str, Any], api_client: Any, bad: dict[str, Any]) -> None:
    params = {k: v for k, v in {**period(world), **bad}.items() if v is not None}
    response = api_client.get("/api/candidates/ledger/", params)
    assert response.status_code == 400, response.content
    assert set(response.json()) & {"start", "end", "team", "limit", "after", "non_field_errors"}


def test_bad_export_format_is_400(world: dict[str, Any], api_client: Any) -> None:
    response = api_client.get("/api/candidates/ledger/export/", period(world, format="xlsx"))
    assert response.status_code == 400 and "format" in response.json()
    assert api_client.get("/api/candidates/labels/training-set/", {"team": world["team"].pk, "format": "xml"}).status_code == 400


def test_a_personal_ledger_judges_the_users_own_filters(world: dict[str, Any], api_client: Any, user: Any) -> None:
    later = timezone.now() + timedelta(minutes=5)  # a period of its own, after the burst
    filter_create(name="mine", owner=user, predicates=[{"field": "mag", "op": "<", "value": 18}])
    parsed = parse_alert_batch(body=json_body(generic_alert(alert_id="p1", ra=40.0, mag=17.5), generic_alert(
        alert_id="p2", object_id="OBJ-P2", ra=20.0, mag=19.5)), content_type=JSON, broker="ztf")
    alerts_ingest(alerts=parsed.alerts, received_at=later, now=later)
    params = {"mine": "true", "start": (later - timedelta(minutes=1)).isoformat(),
              "end": (later + timedelta(minutes=1)).isoformat()}
    body = api_client.get("/api/candidates/ledger/summary/", params).json()
    assert body["total"] == 2
    assert {k: v for k, v in body["reasons"].items() if v} == {"passed_not_triggered": 1, "filtered_out": 1}


def test_the_ledger_page_shows_reasons_and_plots(world: dict[str, Any], client: Any, user: Any) -> None:
    client.force_login(user)
    response = client.get("/candidates/ledger/", {"team": world["team"].pk, "start": world["start"].isoformat(),
                                                  "end": world["end"].isoformat()})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="reasons-total">32<' in html
    assert "Fraction followed against magnitude" in html and "Fraction followed against classifier score" in html
    assert 'id="no-labels"' in html
    assert "/api/candidates/ledger/export/?team=" in html
    assert client.get("/candidates/ledger/", {"start": "2026-13-45"}).status_code == 400
    assert 'href="/candidates/ledger/"' in client.get("/candidates/").content.decode()
