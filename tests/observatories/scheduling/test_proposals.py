"""A team observes at a facility under its own proposal there, and a facility where it has none is no chance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from astropy.coordinates import get_sun
from astropy.time import Time
from django.utils import timezone
from tom_targets.models import Target

from observatories.models import Facility
from observatories.scheduling.models import Dispatch, DispatchState
from observatories.scheduling.services import network_plan, request_submit
from observatories.scheduling.services.dispatch import dispatch_submit
from observatories.simnet.models import SimRequestGroup
from policies.selectors import policies_in_force, semester_of
from policies.services import policy_update, team_create

pytestmark = pytest.mark.django_db(transaction=True)


def _allocate(team, user, *, proposal: str) -> None:
    document = policies_in_force()[team.group.pk].document.to_json()
    document["time"]["allocations"] = [
        {"facility_class": "1m0", "facility_code": "", "semester": semester_of(timezone.now()), "hours": 10,
         "proposal": proposal},
    ]
    policy_update(team=team, by=user, document=document, comment="our LCO proposal")


def _request(team, user, name: str):  # type: ignore[no-untyped-def]
    """A 1-m request tonight for a target opposite the Sun (up all night in the south)."""
    now = timezone.now()
    sun = get_sun(Time(now))
    target = Target.objects.create(name=name, type=Target.SIDEREAL, ra=(sun.ra.deg + 180.0) % 360.0, dec=-35.0)
    return request_submit(
        target=target, team=team.group, requester=user, telescope_class="1m0",
        exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}], window_start=now, window_end=now + timedelta(hours=30),
    )


def test_the_teams_proposal_is_sent_and_a_facility_without_one_is_no_chance(sim, settings, user) -> None:
    settings.SIMNET_PROPOSALS = ["LCO2026B-042"]
    Facility.objects.update(enabled=False)
    Facility.objects.filter(code__in=["lsc-1m0-a", "cpt-1m0-a", "coj-1m0-a"]).update(enabled=True, default_proposal="")
    team = team_create(name="Kilonova Hunters", admins=[user])
    request = _request(team, user, "AT 2026kn")
    # No proposal anywhere: nothing is sent, and the request says why (the ledger reads the same outcome).
    network_plan(request_ids=[request.pk])
    request.refresh_from_db()
    assert request.plan_outcome == "no proposal"
    assert not Dispatch.objects.filter(request=request).exists()

    # The team's allocation names its proposal: the copies go out under it, and the portal accepts them.
    _allocate(team, user, proposal="LCO2026B-042")
    network_plan(request_ids=[request.pk])
    copies = list(Dispatch.objects.filter(request=request))
    assert copies
    for copy in copies:
        dispatch_submit(dispatch_id=copy.pk)
    assert {g.proposal for g in SimRequestGroup.objects.all()} == {"LCO2026B-042"}
    assert all(d.state == DispatchState.SUBMITTED for d in Dispatch.objects.filter(request=request))


def test_a_proposal_the_portal_does_not_know_is_refused_with_its_words(sim, settings, user) -> None:
    settings.SIMNET_PROPOSALS = []
    Facility.objects.update(enabled=False)
    Facility.objects.filter(code="lsc-1m0-a").update(enabled=True, default_proposal="")
    team = team_create(name="Kilonova Hunters", admins=[user])
    _allocate(team, user, proposal="LCO2026B-999")
    request = _request(team, user, "AT 2026kp")
    network_plan(request_ids=[request.pk])
    copy = Dispatch.objects.filter(request=request).first()
    assert copy is not None
    dispatch_submit(dispatch_id=copy.pk)
    copy.refresh_from_db()
    assert copy.state == DispatchState.FAILED_OTHER
    assert 'Invalid pk "LCO2026B-999" - object does not exist.' in copy.reason
    assert not SimRequestGroup.objects.exists()
