"""Vetting: one-click labels from the candidates page and the API, one current label per
(candidate, team, user), labels in the ledger, efficiency and purity, the training set."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from candidates import ledger
from candidates.models import Candidate, CandidateLabel
from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create

from .conftest import JSON, generic_alert, json_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled_world(team: Group) -> dict[str, Any]:
    """Four alerts (A 17 mag rb 0.9, B 18 mag 0.2, C 20 mag 0.8, D 21 mag 0.1) and a filter passing the two brightest."""
    filter_create(name="bright", team=team, predicates=[{"field": "mag", "op": "<", "value": 19}])
    now = timezone.now()
    alerts = [
        generic_alert(alert_id=name, object_id=f"OBJ-{name}", ra=150.0 + 0.01 * i, mag=mag,
                      classifications=[{"classifier": "rb", "version": "2", "class": "real", "score": score}])
        for i, (name, mag, score) in enumerate([("A", 17.0, 0.9), ("B", 18.0, 0.2), ("C", 20.0, 0.8), ("D", 21.0, 0.1)])
    ]  # fmt: skip
    parsed = parse_alert_batch(body=json_body(*alerts), content_type=JSON, broker="ztf")
    alerts_ingest(alerts=parsed.alerts, received_at=now, now=now)
    ids = dict(Candidate.objects.values_list("alert_id", "pk"))
    return {"team": team, "ids": ids, "start": now - timedelta(seconds=1), "end": now + timedelta(seconds=1)}


def test_one_click_labels_from_the_candidates_page(labelled_world: dict[str, Any], client: Any, user: Any) -> None:
    client.force_login(user)
    page = client.get("/candidates/").content.decode()
    a = labelled_world["ids"]["A"]
    assert f'action="/candidates/{a}/label/"' in page and 'name="verdict" value="real"' in page

    response = client.post(f"/candidates/{a}/label/", {"team": labelled_world["team"].pk, "verdict": "real",
                                                        "label_class": "SN Ia", "note": "", "next": "band=r"})
    assert response.status_code == 302 and response["Location"] == "/candidates/?band=r"
    label = CandidateLabel.objects.get()
    assert (label.candidate_id, label.team, label.user, label.verdict, label.label_class) == (
        a, labelled_world["team"], user, "real", "SN Ia")
    assert 'data-label="real"' in client.get("/candidates/").content.decode()

    # A second click by the same user replaces the label (one current label per candidate, team, user).
    client.post(f"/candidates/{a}/label/", {"team": labelled_world["team"].pk, "verdict": "bogus"})
    label = CandidateLabel.objects.get()
    assert (label.verdict, label.label_class) == ("bogus", "")
    assert label.updated_at >= label.created_at

    # Nonsense records nothing.
    client.post(f"/candidates/{a}/label/", {"team": labelled_world["team"].pk, "verdict": "maybe"})
    assert CandidateLabel.objects.get().verdict == "bogus"


def test_only_team_members_label_for_a_team(labelled_world: dict[str, Any], client: Any, django_user_model: Any) -> None:
    outsider = django_user_model.objects.create_user(username="mallory", password="another pass phrase 7")
    client.force_login(outsider)
    response = client.post(f"/candidates/{labelled_world['ids']['A']}/label/",
                           {"team": labelled_world["team"].pk, "verdict": "real"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")  # TOM's 403 page
    assert not CandidateLabel.objects.exists()


def test_the_label_api(labelled_world: dict[str, Any], api_client: Any, django_user_model: Any) -> None:
    from rest_framework.test import APIClient

    body = {"candidate": labelled_world["ids"]["B"], "team": labelled_world["team"].pk, "verdict": "bogus",
            "note": "a known variable star"}
    first = api_client.post("/api/candidates/labels/", body, format="json")
    assert first.status_code == 201 and first.json()["verdict"] == "bogus" and first.json()["user"] == "alice"
    again = api_client.post("/api/candidates/labels/", {**body, "verdict": "real"}, format="json")
    assert again.status_code == 200 and CandidateLabel.objects.get().verdict == "real"

    assert api_client.post("/api/candidates/labels/", {**body, "verdict": "maybe"}, format="json").status_code == 400
    empty = api_client.post("/api/candidates/labels/", {"candidate": body["candidate"], "team": body["team"]},
                            format="json")
    assert empty.status_code == 400 and "verdict" in empty.json()["detail"]
    assert api_client.post("/api/candidates/labels/", {**body, "candidate": 10**9}, format="json").status_code == 404
    outsider = APIClient()
    outsider.force_authenticate(django_user_model.objects.create_user(username="mallory", password="pass phrase 77"))
    assert outsider.post("/api/candidates/labels/", body, format="json").status_code == 403
    assert CandidateLabel.objects.count() == 1


def label_all(world: dict[str, Any], user: Any, verdicts: dict[str, str]) -> None:
    from candidates.services import label_set

    for name, verdict in verdicts.items():
        label_set(candidate=Candidate.objects.get(pk=world["ids"][name]), team=world["team"], user=user,
                  verdict=verdict)


def test_labels_feed_the_ledger_and_efficiency_and_purity(labelled_world: dict[str, Any], user: Any, client: Any) -> None:
    label_all(labelled_world, user, {"A": "real", "B": "bogus", "C": "real", "D": "bogus"})
    scope = ledger.Scope(team_id=labelled_world["team"].pk)
    rows = {r["alert_id"]: r for r in ledger.ledger_page(scope=scope, start=labelled_world["start"],
                                                          end=labelled_world["end"])}
    assert {k: (r["label"], r["labelled_by"], r["n_labels"]) for k, r in rows.items()} == {
        "A": ("real", "alice", 1), "B": ("bogus", "alice", 1), "C": ("real", "alice", 1), "D": ("bogus", "alice", 1)}

    labelled, figures = ledger.ledger_efficiency(scope=scope, start=labelled_world["start"], end=labelled_world["end"])
    assert labelled == 4
    by_name = {(e.kind, e.name): e for e in figures}
    bright = by_name[("filter", "bright v1")]  # passed A (real) and B (bogus): found 1 of the 2 real ones
    assert (bright.positives, bright.true_positives, bright.real, bright.efficiency, bright.purity) == (2, 1, 2, 0.5, 0.5)
    rb = by_name[("classifier", "rb/real")]  # >= 0.5: A and C, both real
    assert (rb.positives, rb.true_positives, rb.efficiency, rb.purity) == (2, 2, 1.0, 1.0)
    followed = by_name[("followed", "follow-up requested")]  # no trigger rule: nothing requested
    assert (followed.positives, followed.efficiency, followed.purity) == (0, 0.0, None)

    client.force_login(user)
    html = client.get("/candidates/ledger/", {"team": labelled_world["team"].pk,
                                              "start": labelled_world["start"].isoformat(),
                                              "end": labelled_world["end"].isoformat()}).content.decode()
    assert 'id="efficiency"' in html and "Efficiency and purity over labelled candidates" in html


def test_the_training_set_export(labelled_world: dict[str, Any], user: Any, api_client: Any,
                                 django_user_model: Any) -> None:
    label_all(labelled_world, user, {"A": "real", "D": "bogus"})
    bob = django_user_model.objects.create_user(username="bob", password="bob pass phrase 99")
    bob.groups.add(labelled_world["team"])
    label_all(labelled_world, bob, {"A": "real"})

    response = api_client.get("/api/candidates/labels/training-set/", {"team": labelled_world["team"].pk})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["alert_id"], r["label"], r["n_labels"], r["n_real"], r["n_bogus"]) for r in rows] == [
        ("A", "real", "2", "2", "0"), ("D", "bogus", "1", "0", "1")]
    assert rows[0]["mag"] == "17.0" and '"rb"' in rows[0]["classifications"] and rows[0]["labelled_by"] == "bob"

    response = api_client.get("/api/candidates/labels/training-set/", {"team": labelled_world["team"].pk,
                                                                        "format": "parquet"})
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert table.column_names == list(ledger.TRAINING_COLUMNS)
    assert table.column("label").to_pylist() == ["real", "bogus"] and table.column("mag").to_pylist() == [17.0, 21.0]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_vetting_and_the_ledger_page_in_a_browser(labelled_world: dict[str, Any], live_server: Any, page: Any,
                                                  user: Any) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "correct horse battery")
    page.click("form button[type=submit]")
    page.goto(f"{live_server.url}/candidates/")
    a = labelled_world["ids"]["A"]
    # One click on "real" in candidate A's row labels it, and the page comes back showing it.
    page.locator(f'form[action="/candidates/{a}/label/"] button[value="real"]').first.click()
    page.wait_for_selector('[data-label="real"]')
    assert CandidateLabel.objects.get(candidate_id=a).verdict == "real"
    page.goto(f"{live_server.url}/candidates/ledger/?team={labelled_world['team'].pk}"
              f"&start={labelled_world['start'].isoformat().replace('+', '%2B')}"
              f"&end={labelled_world['end'].isoformat().replace('+', '%2B')}")
    page.wait_for_selector(".js-plotly-plot")
    assert page.locator(".js-plotly-plot").count() >= 2
    assert page.locator("#efficiency").count() == 1
