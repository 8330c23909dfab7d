"""TOM's own pages behind the door (issue 20): target names are inert on the sky map, and TOM's cancel,
update and merge views act only for the owning team."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from tom_observations.models import ObservationRecord
from tom_targets.models import Target

from observatories.models import Facility
from observatories.scheduling.models import Dispatch, DispatchState, ObservingRequest
from policies.services import policy_update, target_record_interest

from .conftest import document, make_target, rule

pytestmark = pytest.mark.django_db

PAYLOAD = "</script><img src=x onerror=alert(1)>"


def refused(response) -> bool:
    """A refusal on a TOM page: 404, or 403 (which TOM's middleware turns into a redirect to the login page)."""
    if response.status_code == 302:
        return response.headers["Location"].startswith("/accounts/login/")
    return response.status_code in (403, 404)


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- 1. target names on the sky map ---------------------------------------------------------------------------


def test_a_hostile_target_name_renders_inert_on_the_targets_page(world):
    target = make_target(PAYLOAD)
    Target.objects.filter(pk=target.pk).update(permissions=Target.Permissions.OPEN)  # every user sees it
    for user in (world.olga, world.bob):
        page = client_for(user).get("/targets/")
        assert page.status_code == 200
        body = page.content.decode()
        assert PAYLOAD not in body and "<img src=x" not in body
        assert "\\u003C/script\\u003E\\u003Cimg src=x onerror=alert(1)\\u003E" in body  # the map's data, JSON-encoded
        # The table's page as HTMX fetches it, with the map's out-of-band update.
        partial = client_for(user).get("/targets/", HTTP_HX_REQUEST="true")
        assert partial.status_code == 200
        assert PAYLOAD not in partial.content.decode() and "<img src=x" not in partial.content.decode()
        assert "aladin-targets-data" in partial.content.decode()


# --- 2. cancel, update and merge ------------------------------------------------------------------------------


@pytest.fixture
def copy(world):
    """Team A's live copy at a facility, with the observation record Baton's scheduler makes for it."""
    now = timezone.now()
    target = make_target("AT 2026private")
    target_record_interest(target=target, team=world.a.group)
    request = ObservingRequest.objects.create(
        target=target, team=world.a.group, telescope_class="1m0",
        exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}], window_start=now, window_end=now + timedelta(hours=30),
    )
    record = ObservationRecord.objects.create(
        target=target, facility="Baton", observation_id="lsc-1m0-a:4242", status="PENDING",
        parameters={"baton_dispatch": None, "baton_request": request.pk, "facility": "lsc-1m0-a"},
    )
    dispatch = Dispatch.objects.create(
        request=request, facility=Facility.objects.get(code="lsc-1m0-a"), state=DispatchState.SUBMITTED,
        remote_id="4242", window_start=now, window_end=now + timedelta(hours=30), p_success=0.8, duration_s=300,
        observation_record=record,
    )
    record.parameters = {**record.parameters, "baton_dispatch": dispatch.pk}
    record.save()
    return dispatch


def test_cancel_is_a_post(world, copy):
    page = client_for(world.alice).get(f"/observations/{copy.observation_record_id}/cancel/")
    assert page.status_code == 405
    copy.refresh_from_db()
    assert copy.state == DispatchState.SUBMITTED


@pytest.mark.parametrize("who", ["carol", "dave", "olga", None])
def test_nobody_outside_the_team_cancels_or_updates_its_copy(world, copy, who):
    client = client_for(world.user(who) if who else None)
    record_id = copy.observation_record_id
    cancel = client.post(f"/observations/{record_id}/cancel/")
    update = client.post(f"/observations/{record_id}/update/", {"observation_id": "hijacked"})
    form = client.get(f"/observations/{record_id}/update/")
    assert refused(cancel) and refused(update) and refused(form)
    copy.refresh_from_db()
    assert copy.state == DispatchState.SUBMITTED
    assert ObservationRecord.objects.get(pk=record_id).observation_id == "lsc-1m0-a:4242"


def test_a_team_that_sees_the_request_still_may_not_act_on_it(world, copy):
    """Team B sees A's requests (a partner for requests), so it gets a 403, not a 404; nothing changes."""
    policy_update(team=world.a, by=world.alice, document=document(requests=rule(("team-b",), 0, "none")))
    client = client_for(world.dave)
    record_id = copy.observation_record_id
    for response in (client.post(f"/observations/{record_id}/cancel/"),
                     client.post(f"/observations/{record_id}/update/", {"observation_id": "hijacked"})):
        assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/login/")  # TOM's 403
    copy.refresh_from_db()
    assert copy.state == DispatchState.SUBMITTED


def test_the_owning_teams_admin_cancels_through_the_scheduler(world, copy):
    record_id = copy.observation_record_id
    page = client_for(world.alice).post(f"/observations/{record_id}/cancel/")
    assert page.status_code == 302 and page.headers["Location"] == f"/requests/{copy.request_id}/"
    copy.refresh_from_db()
    assert copy.state == DispatchState.CANCELLED and "cancelled by alice_a" in copy.reason


def test_the_owning_teams_member_updates_the_observation_id(world, copy):
    record_id = copy.observation_record_id
    assert client_for(world.bob).get(f"/observations/{record_id}/update/").status_code == 200
    page = client_for(world.bob).post(f"/observations/{record_id}/update/", {"observation_id": "lsc-1m0-a:4243"})
    assert page.status_code == 302
    assert ObservationRecord.objects.get(pk=record_id).observation_id == "lsc-1m0-a:4243"


def test_a_record_submitted_by_hand_follows_tom(world):
    target = make_target("AT by hand")
    Target.objects.filter(pk=target.pk).update(permissions=Target.Permissions.OPEN)
    record = ObservationRecord.objects.create(target=target, facility="Baton", observation_id="x:1", status="PENDING",
                                              parameters={})
    assert refused(client_for(world.dave).post(f"/observations/{record.pk}/update/", {"observation_id": "y:2"}))
    assert ObservationRecord.objects.get(pk=record.pk).observation_id == "x:1"


@pytest.fixture
def two_targets(world):
    first, second = make_target("AT 2026a-private"), make_target("AT 2026b-private")
    for target in (first, second):
        target_record_interest(target=target, team=world.a.group)
    return first, second


@pytest.mark.parametrize("who", ["carol", "dave", "olga", None])
def test_nobody_outside_the_team_merges_its_targets(world, two_targets, who):
    first, second = two_targets
    client = client_for(world.user(who) if who else None)
    url = f"/targets/merge/{first.pk}/{second.pk}"
    page = client.get(url)
    post = client.post(url, {"name_select": first.pk, "confirm": "1"})
    assert refused(page) and refused(post)
    assert "AT 2026a-private" not in page.content.decode()
    assert Target.objects.filter(pk__in=[first.pk, second.pk]).count() == 2


def test_a_partner_that_sees_both_targets_may_not_merge_them(world, two_targets):
    policy_update(team=world.a, by=world.alice, document=document(requests=rule(("team-b",), 0, "none")))
    first, second = two_targets
    client = client_for(world.dave)
    assert refused(client.get(f"/targets/merge/{first.pk}/{second.pk}"))
    assert refused(client.post(f"/targets/merge/{first.pk}/{second.pk}", {"name_select": first.pk, "confirm": "1"}))
    assert Target.objects.filter(pk__in=[first.pk, second.pk]).count() == 2


def test_the_owning_teams_admin_merges_its_targets(world, two_targets):
    first, second = two_targets
    client = client_for(world.alice)
    assert client.get(f"/targets/merge/{first.pk}/{second.pk}").status_code == 200
    assert client.get(f"/targets/merge/{first.pk}/{first.pk}").status_code == 404  # into itself: deleted by TOM
    page = client.post(f"/targets/merge/{first.pk}/{second.pk}", {"name_select": first.pk, "confirm": "1"})
    assert page.status_code == 302
    assert list(Target.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", flat=True)) == [first.pk]
