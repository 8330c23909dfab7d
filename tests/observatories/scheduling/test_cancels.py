"""Cancels reach the facility: a lost cancel is sent again, and a copy the facility holds without Baton knowing is
found by its key and withdrawn (issue 20)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from astropy.coordinates import get_sun
from astropy.time import Time
from django.utils import timezone
from tom_targets.models import Target

from observatories.models import Facility
from observatories.scheduling.models import Dispatch, DispatchState, ObservingRequest
from observatories.scheduling.services.dispatch import (
    dispatch_cancel,
    dispatch_cancel_remote,
    dispatch_submit,
    dispatches_withdraw_owed,
)
from observatories.simnet.models import SimRequestGroup
from policies.services import team_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def copy(sim, user) -> Dispatch:
    Facility.objects.update(enabled=False)
    Facility.objects.filter(code="lsc-1m0-a").update(enabled=True)
    team = team_create(name="Cancel team", admins=[user]).group
    now = timezone.now()
    sun = get_sun(Time(now))
    target = Target.objects.create(name="AT 2026cx", type=Target.SIDEREAL, ra=(sun.ra.deg + 180.0) % 360.0, dec=-35.0)
    request = ObservingRequest.objects.create(
        target=target, team=team, telescope_class="1m0", exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}],
        window_start=now, window_end=now + timedelta(hours=30),
    )
    return Dispatch.objects.create(request=request, facility=Facility.objects.get(code="lsc-1m0-a"), window_start=now,
                                   window_end=now + timedelta(hours=30), p_success=0.8, duration_s=300)


def test_a_lost_cancel_is_sent_again_until_the_facility_confirms(copy, sim) -> None:
    dispatch_submit(dispatch_id=copy.pk)
    copy.refresh_from_db()
    assert copy.state == DispatchState.SUBMITTED and copy.remote_id
    # Cancelled; the message that would tell the facility is lost (no worker runs here, Redis may be flushed).
    dispatch_cancel(dispatch_id=copy.pk, reason="twin observed elsewhere")
    assert SimRequestGroup.objects.get(name=copy.idempotency_key).state == "PENDING"
    later = timezone.now() + timedelta(minutes=5)
    assert dispatches_withdraw_owed(now=later) == [copy.pk]
    dispatch_cancel_remote(dispatch_id=copy.pk)  # what the re-sent task does
    assert SimRequestGroup.objects.get(name=copy.idempotency_key).state == "CANCELED"
    copy.refresh_from_db()
    assert copy.withdrawn_at is not None
    assert dispatches_withdraw_owed(now=later) == []


def test_a_copy_the_facility_holds_unknown_to_baton_is_found_by_its_key(copy, sim, settings) -> None:
    from observatories.portal.client import PortalUnavailable

    # The facility commits the POST, then answers 500; the task gives up for now: Baton never learned the group's id.
    settings.OBSERVATORIES_HTTP_RETRIES = 0
    sim.fault("error_500_after", path="api/requestgroups/", method="POST")
    with pytest.raises(PortalUnavailable):
        dispatch_submit(dispatch_id=copy.pk)
    copy.refresh_from_db()
    assert copy.state == DispatchState.QUEUED and not copy.remote_id and copy.submit_attempts == 1
    assert SimRequestGroup.objects.get(name=copy.idempotency_key).state == "PENDING"
    dispatch_cancel(dispatch_id=copy.pk, reason="request cancelled")
    dispatch_cancel_remote(dispatch_id=copy.pk)
    copy.refresh_from_db()
    assert copy.remote_id and copy.withdrawn_at is not None
    assert SimRequestGroup.objects.get(name=copy.idempotency_key).state == "CANCELED"


def test_a_copy_never_sent_is_withdrawn_at_once(copy) -> None:
    dispatch_cancel(dispatch_id=copy.pk, reason="request cancelled")
    copy.refresh_from_db()
    assert copy.state == DispatchState.CANCELLED and copy.withdrawn_at is not None
    assert dispatches_withdraw_owed(now=timezone.now() + timedelta(minutes=5)) == []
