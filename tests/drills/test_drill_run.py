"""A whole drill through the real Celery worker and the simulated network over HTTP, in accelerated time.

The drill's report has its figures, nothing reaches a non-simulated facility, notifications go out marked
as a drill (Slack after its scripted outage), the real world holds none of the drill's rows, and removing
the drill leaves nothing behind.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from tom_targets.models import Target

from candidates.models import Candidate, TriggerFiring
from drills.models import Drill, DrillAck, DrillState
from drills.services import drill_create
from notifications.models import Notification
from observatories.scheduling.models import Dispatch, ObservingRequest
from observatories.simnet.models import SimRequestGroup
from policies.models import PolicyDecision

from .conftest import SCENARIO

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for_drill(pk: int, timeout: float = 240.0) -> Drill:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drill = Drill.objects.get(pk=pk)
        if drill.state in (DrillState.COMPLETED, DrillState.FAILED):
            return drill
        time.sleep(0.25)
    raise AssertionError(f"drill {pk} did not finish: step {drill.step}/{drill.steps}, state {drill.state}")


def schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'drill\\_%%'")
        return {row[0] for row in cursor.fetchall()}


def test_a_whole_drill(network: Any, drill_team: Any, user: Any, api_client: Any, notifications_worker: Any,
                       smtp_sink: Any, slack_sink: Any, real_portal: Any, client: Any) -> None:
    with smtp_sink.lock:
        smtp_sink.received.clear()
    with slack_sink.lock:
        slack_sink.posts.clear()
    response = api_client.post("/api/drills/", {"team": "drill-team", "name": "December rehearsal", "scenario": SCENARIO,
                                                "seed": 7}, format="json")
    assert response.status_code == 201, response.content
    drill = wait_for_drill(response.json()["id"])
    assert drill.state == DrillState.COMPLETED, drill.error
    assert drill.step == drill.steps == 36

    report = api_client.get(f"/api/drills/{drill.pk}/report/").json()
    # Every alert the scenario sent was stored, and the chain ran in order in simulated time.
    assert report["alerts"]["sent"] == report["alerts"]["stored"] > 0
    latency = report["latency_s"]
    assert 0 <= latency["alert_to_request"] <= latency["alert_to_dispatch"] <= latency["alert_to_observation"]
    assert latency["alert_to_observation"] < 18 * 3600
    event = report["events"][0]
    assert event["name"] == "FT-1" and event["goal_met"] and event["first_observation_at"]
    goals = report["goals"]
    assert goals["requests"] >= 1 and goals["fraction_completed"] == round(goals["completed"] / goals["requests"], 4)
    assert goals["completed"] >= 1
    # Redundant copies at several sites, none at the downed telescope or a real one; the twins were cancelled.
    facilities = {d["facility"] for d in report["dispatches"]}
    assert len({d["site"] for d in report["dispatches"]}) >= 2
    assert "real-1m0-a" not in facilities
    assert report["non_simulated_dispatches"] == 0 and all(d["simulated"] for d in report["dispatches"])
    assert [d["state"] for d in report["dispatches"]].count("completed") == 1
    assert all(d["reason"].startswith("twin observed") for d in report["dispatches"] if d["state"] == "cancelled")
    assert real_portal.calls == []
    # The policy decisions that fired are listed with the policy version that made them.
    assert report["policy_decisions"]
    assert all(d["policy_version"] == 1 for d in report["policy_decisions"] if d["action"] == "allocation")

    # Notifications went out marked as a drill; Slack's were retried after the scripted outage.
    emails = smtp_sink.to("pi@example.org")
    assert emails and all(m.message["Subject"].startswith("[DRILL December rehearsal]") for m in emails)
    assert f"/drills/{drill.pk}/ack/" in emails[0].text
    posts = slack_sink.to("/hooks/drill-team")
    assert posts and all("[DRILL December rehearsal]" in p.body["blocks"][0]["text"]["text"] for p in posts)
    slack_rows = [n for n in report["notifications"] if n["channel"] == "slack"]
    assert slack_rows and all(n["status"] == "sent" for n in slack_rows)
    early = [n for n in slack_rows if n["created_at"] < "2026-12-15T03:00"]
    assert early and all(n["attempts"] >= 2 and n["sent_at"] >= "2026-12-15T03:00" for n in early)

    # Acknowledging from the link: the report says who and how fast (wall clock).
    first = report["notifications"][0]
    assert client.get(reverse("drills:ack", args=[drill.pk, first["id"]])).status_code == 302  # login first
    client.force_login(user)
    page = client.get(reverse("drills:ack", args=[drill.pk, first["id"]]))
    assert page.status_code == 200 and b"Acknowledge" in page.content
    assert client.post(reverse("drills:ack", args=[drill.pk, first["id"]])).status_code == 302
    assert api_client.post(f"/api/drills/{drill.pk}/acks/", {"notification_id": 10**12}, format="json").status_code == 400
    again = api_client.get(f"/api/drills/{drill.pk}/report/").json()
    acked = next(n for n in again["notifications"] if n["id"] == first["id"])
    assert acked["acks"][0]["user"] == user.username and acked["acks"][0]["after_s"] >= 0
    assert again["acknowledged"] == 1
    page = client.get(reverse("drills:detail", args=[drill.pk]))
    assert page.status_code == 200 and b"drill-notifications" in page.content and b"plotly" in page.content

    # The real world holds none of it.
    assert Candidate.objects.count() == 0 and TriggerFiring.objects.count() == 0
    assert ObservingRequest.objects.count() == 0 and Dispatch.objects.count() == 0
    assert Notification.objects.count() == 0 and PolicyDecision.objects.filter(action="allocation").count() == 0
    assert not Target.objects.filter(name__startswith="DRILL").exists() and SimRequestGroup.objects.count() == 0
    assert api_client.get("/api/requests/").json()["count"] == 0

    # Removing it leaves nothing anywhere.
    assert drill.schema in schemas()
    assert api_client.delete(f"/api/drills/{drill.pk}/").status_code == 204
    assert drill.schema not in schemas()
    assert not Drill.objects.filter(pk=drill.pk).exists() and not DrillAck.objects.exists()
    assert api_client.get(f"/api/drills/{drill.pk}/report/").status_code == 404
    assert b"December rehearsal" not in client.get(reverse("drills:list")).content


def test_the_same_seed_gives_the_same_drill(network: Any, drill_team: Any, user: Any, api_client: Any,
                                            notifications_worker: Any) -> None:
    faults: list = SCENARIO["faults"]  # type: ignore[assignment]
    scenario = {**SCENARIO, "duration_hours": 8, "faults": faults[:2]}
    first = drill_create(team=drill_team, user=user, name="twice", scenario=scenario, seed=11)
    first = wait_for_drill(first.pk)
    assert first.state == DrillState.COMPLETED, first.error
    response = api_client.post(f"/api/drills/{first.pk}/rerun/")
    assert response.status_code == 201
    second = wait_for_drill(response.json()["id"])
    assert second.state == DrillState.COMPLETED, second.error
    assert second.rerun_of_id == first.pk and second.sim_start == first.sim_start
    from drills.services import report_core

    a, b = report_core(first.report), report_core(second.report)
    assert a["alerts"]["stored"] > 0 and a["dispatches"]
    assert a == b


@pytest.mark.browser
def test_a_drill_from_the_browser(network: Any, drill_team: Any, user: Any, live_server: Any, page: Any,
                                  notifications_worker: Any) -> None:
    import json

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "correct horse battery")
    page.click("form button[type=submit]")
    page.goto(f"{live_server.url}/drills/")
    page.select_option("select[name=team]", "drill-team")
    page.fill("input[name=name]", "Browser rehearsal")
    page.fill("textarea[name=scenario]", json.dumps({**SCENARIO, "duration_hours": 4, "faults": []}))
    page.click("#drill-form button[type=submit]")
    page.wait_for_url("**/drills/*/")
    pk = int(page.url.rstrip("/").rsplit("/", 1)[1])
    drill = wait_for_drill(pk)
    assert drill.state == DrillState.COMPLETED, drill.error
    page.goto(f"{live_server.url}/drills/{pk}/")
    page.wait_for_selector(".js-plotly-plot .bars path")
    assert page.locator("#drill-figures").inner_text().count("Alert →") == 3
    assert page.locator(".progress-bar").inner_text() == f"{drill.steps}/{drill.steps}"
    rows = page.locator("#drill-notifications tr:has(td form)")
    assert rows.count() >= 1
    rows.first.locator("button").click()
    page.wait_for_url(f"**/drills/{pk}/")
    assert DrillAck.objects.filter(drill_id=pk, user=user).count() == 1
    assert "alice after" in page.locator("#drill-notifications").inner_text()
