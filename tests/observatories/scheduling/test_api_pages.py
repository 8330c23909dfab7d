"""The requests API and pages: submit, refuse bad input, read, cancel; the timeline in a real browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from guardian.shortcuts import assign_perm
from tom_targets.models import Target

from observatories.models import Facility
from observatories.network import network_load
from observatories.scheduling.models import Dispatch, DispatchState, ObservingRequest, RequestState
from policies.services import team_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(user):
    network_load()
    team = team_create(name="SN team", admins=[user]).group
    target = Target.objects.create(name="SN 2026zz", type=Target.SIDEREAL, ra=150.0, dec=-30.0)
    assign_perm("tom_targets.view_target", user, target)
    return team, target


def body(team, target, **overrides):
    now = timezone.now()
    data = {
        "target": target.pk, "team": team.pk, "telescope_class": "1m0",
        "exposures": [{"filter": "rp", "exposure_s": 120, "count": 2}],
        "window_start": now.isoformat(), "window_end": (now + timedelta(days=2)).isoformat(),
        "success_probability": 0.9,
    }
    data.update(overrides)
    return data


def test_submit_returns_the_request_and_records_its_birth(api_client, setup, django_capture_on_commit_callbacks):
    team, target = setup
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client.post("/api/requests/", body(team, target), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["state"] == RequestState.PENDING
    assert data["success_probability"] == 0.9
    assert data["exposures"] == [{"filter": "rp", "exposure_s": 120.0, "count": 2}]
    assert [t["to_state"] for t in data["transitions"]] == ["pending"]
    assert len(callbacks) == 1  # planning is enqueued when the transaction commits, not before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"telescope_class": "9m9"}, "no enabled facility of class '9m9'"),
        ({"exposures": [{"filter": "Hα", "exposure_s": 10, "count": 1}]}, "no 1m0 instrument has filter(s) Hα"),
        ({"window_end": "2020-01-02T00:00:00Z", "window_start": "2020-01-01T00:00:00Z"}, "it is already over"),
        ({"cadence_visits": 3}, "cadence_period: required"),
        ({"window_end": "9999-12-31T00:00:00Z"}, "end within 400 days"),
        ({"window_start": "0001-01-01T00:00:00Z"}, "no earlier than a day ago"),
        ({"exposures": [{"filter": "rp", "exposure_s": 1, "count": 1}] * 21}, "at most 20 entries"),
        ({"cadence_visits": 40, "cadence_period_hours": 0.01}, "shorter than the observation"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(api_client, setup, overrides, message):
    team, target = setup
    response = api_client.post("/api/requests/", body(team, target, **overrides), format="json")
    assert response.status_code == 400
    assert message in str(response.json())
    assert ObservingRequest.objects.count() == 0


def test_someone_elses_team_and_target_are_refused(api_client, setup):
    team, target = setup
    other_team = Group.objects.create(name="not mine")
    hidden = Target.objects.create(name="hidden", type=Target.SIDEREAL, ra=1.0, dec=1.0)
    response = api_client.post("/api/requests/", body(other_team, hidden), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors["team"] == ["you are not a member of this team"]
    assert errors["target"] == ["no such target"]


def test_requests_of_other_teams_are_invisible(api_client, setup, django_user_model):
    team, target = setup
    api_client.post("/api/requests/", body(team, target), format="json")
    outsider = django_user_model.objects.create_user(username="mallory", password="x" * 20)
    api_client.force_authenticate(outsider)
    assert api_client.get("/api/requests/").json()["count"] == 0
    request_id = ObservingRequest.objects.get().pk
    assert api_client.get(f"/api/requests/{request_id}/").status_code == 404
    assert api_client.post(f"/api/requests/{request_id}/cancel/").status_code == 404


def test_cancel_withdraws_queued_copies_and_is_final(api_client, setup):
    team, target = setup
    request_id = api_client.post("/api/requests/", body(team, target), format="json").json()["id"]
    request = ObservingRequest.objects.get(pk=request_id)
    facility = Facility.objects.get(code="lsc-1m0-a")
    now = timezone.now()
    queued = Dispatch.objects.create(request=request, facility=facility, window_start=now, window_end=now + timedelta(hours=2),
                                     p_success=0.6, duration_s=600)
    response = api_client.post(f"/api/requests/{request_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == RequestState.CANCELLED
    queued.refresh_from_db()
    assert queued.state == DispatchState.CANCELLED
    # Cancelling again changes nothing (idempotent); a request that has ended otherwise cannot be cancelled.
    again = api_client.post(f"/api/requests/{request_id}/cancel/")
    assert again.status_code == 200
    assert request.transitions.filter(to_state=RequestState.CANCELLED).count() == 1
    ObservingRequest.objects.filter(pk=request_id).update(state=RequestState.COMPLETED)
    assert api_client.post(f"/api/requests/{request_id}/cancel/").status_code == 409


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_request_pages_in_a_browser(live_server, page, setup, user):
    team, target = setup
    now = timezone.now()
    request = ObservingRequest.objects.create(
        target=target, team=team, requester=user, telescope_class="1m0",
        exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}], window_start=now, window_end=now + timedelta(days=1),
    )
    for code, state in (("lsc-1m0-a", DispatchState.FAILED_WEATHER), ("cpt-1m0-a", DispatchState.COMPLETED)):
        Dispatch.objects.create(request=request, facility=Facility.objects.get(code=code), state=state,
                                window_start=now + timedelta(hours=2), window_end=now + timedelta(hours=5),
                                p_success=0.6, duration_s=600)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "correct horse battery")
    page.click("form button[type=submit]")
    page.goto(f"{live_server.url}/requests/{request.pk}/")
    assert page.locator("#request-state").inner_text() == "Pending"
    rows = page.locator("#dispatches tbody tr")
    assert rows.count() == 2
    # The plotly timeline drew one bar per copy.
    page.wait_for_selector(".js-plotly-plot .bars path")
    assert page.locator(".js-plotly-plot .bars path").count() >= 2
    page.goto(f"{live_server.url}/night-plan/")
    page.wait_for_selector(".js-plotly-plot")
    page.goto(f"{live_server.url}/requests/new/?target={target.pk}")
    assert page.locator("select[name=telescope_class] option[value='1m0']").count() == 1


def test_requests_are_shared_as_the_teams_policy_says(api_client, setup, django_user_model):
    """A request records its team's interest in the target; others see it as the team's requests rule says."""
    from rest_framework.test import APIClient

    from policies.models import TargetInterest
    from policies.selectors import policy_in_force
    from policies.services import policy_update

    team, target = setup
    partner_admin = django_user_model.objects.create_user(username="pat")
    partner = team_create(name="Partner team", admins=[partner_admin])
    stranger = APIClient()
    stranger.force_authenticate(django_user_model.objects.create_user(username="sam"))
    pat = APIClient()
    pat.force_authenticate(partner_admin)
    made = api_client.post("/api/requests/", body(team, target), format="json").json()
    interest = TargetInterest.objects.get(target=target, team=team)
    assert interest.source == "request:api"
    assert pat.get("/api/requests/").json()["count"] == 0
    # The team names the partner for its requests: the partner sees them (and the target), a stranger still does not.
    owner = team.baton_team
    document = policy_in_force(team=owner).document.to_json()
    document["sharing"]["requests"] = {"partners": [partner.slug], "proprietary_days": 0, "release_to": "none"}
    policy_update(team=owner, by=owner.roles.get().user, document=document)
    assert [r["id"] for r in pat.get("/api/requests/").json()["results"]] == [made["id"]]
    assert pat.get(f"/api/requests/{made['id']}/").status_code == 200
    assert stranger.get("/api/requests/").json()["count"] == 0
    assert stranger.get(f"/api/requests/{made['id']}/").status_code == 404
    # Seeing is not acting: the partner may read the request but not cancel it; nor may an observer of the team.
    assert pat.post(f"/api/requests/{made['id']}/cancel/").status_code == 403
    from policies.services import team_member_set

    watcher = django_user_model.objects.create_user(username="olive")
    team_member_set(team=owner, user=watcher, role="observer", by=owner.roles.get().user)
    olive = APIClient()
    olive.force_authenticate(watcher)
    assert olive.post(f"/api/requests/{made['id']}/cancel/").status_code == 403
    # ...nor spend its time.
    refused = olive.post("/api/requests/", body(team, target), format="json")
    assert refused.status_code == 400 and "observers" in str(refused.json())
    assert api_client.get(f"/api/requests/{made['id']}/").json()["state"] != "cancelled"
    assert api_client.post(f"/api/requests/{made['id']}/cancel/").status_code == 200
