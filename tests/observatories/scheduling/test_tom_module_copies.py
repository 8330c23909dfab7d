"""Copies across networks whose schedulers do not know about each other: a portal copy and a Gemini copy.

The Gemini copy goes through TOM Toolkit's own Gemini module (``GEMFacility``), unchanged, against a local
stand-in of Gemini's ToO trigger endpoint (``tests/observatories/gemini_standin.py``); the portal copy goes to
the simulated LCO-style network over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from astropy.coordinates import get_sun
from astropy.time import Time
from django.utils import timezone
from tom_observations.facilities import gemini
from tom_observations.models import ObservationRecord
from tom_targets.models import Target

from observatories.models import Facility, Instrument, Site
from observatories.scheduling.models import Dispatch, DispatchState, ObservingRequest, RequestState
from observatories.scheduling.services import network_plan, request_submit
from observatories.scheduling.services.dispatch import dispatch_cancel_remote, dispatch_poll, dispatch_submit
from observatories.simnet.models import SimObservation, SimRequestGroup
from observatories.simnet.services import sim_tick, sim_weather_set
from policies.services import team_create

from ..gemini_standin import GeminiStandIn

pytestmark = pytest.mark.django_db(transaction=True)

GEMINI_PARAMETERS = {
    # The programme's fixed fields (Gemini's ToO template observation), and where Baton puts the copy's values.
    "obsid": ["GS-2026B-Q-101-1"], "ready": "true", "brightness": "{mag}", "brightness_band": "r",
    "brightness_system": "AB", "posangle": "0", "exptimes": "{exposure_s}", "notetitle": "Finding Chart",
    "note": "", "group": "baton", "eltype": "airmass", "elmin": "1.0", "elmax": "{max_airmass}",
    "window_start": "{window_start}", "window_duration": "{window_hours}", "gstarg": "", "gsra": "", "gsdec": "",
    "gsbrightness": "", "gsbrightness_band": "UC", "gsbrightness_system": "Vega", "gsprobe": "OIWFS",
}


@pytest.fixture
def gemini_standin(monkeypatch) -> Iterator[GeminiStandIn]:
    standin = GeminiStandIn()
    url = standin.start()
    # TOM's module reads its endpoints and key from settings.FACILITIES["GEM"] when imported (GEMINI_* in Baton's env).
    monkeypatch.setitem(gemini.PORTAL_URL, "GS", url)
    monkeypatch.setitem(gemini.GEM_SETTINGS["api_key"], "GS", standin.password)
    monkeypatch.setitem(gemini.GEM_SETTINGS, "user_email", standin.email)
    yield standin
    standin.stop()


@pytest.fixture
def two_networks(sim, gemini_standin) -> tuple[Facility, Facility]:
    """One LCO-style 1-m at Cerro Tololo (the simulated portal) and Gemini South next door, through TOM's module."""
    Facility.objects.update(enabled=False)
    lsc = Facility.objects.get(code="lsc-1m0-a")
    Facility.objects.filter(pk=lsc.pk).update(enabled=True)
    gs = Facility.objects.create(
        code="gs-gmos", name="Gemini South, GMOS-S", site=Site.objects.get(code="sor"), telescope_class="8m1",
        also_serves=["1m0"], aperture_m=8.1, adapter="tom_observations.facilities.gemini.GEMFacility",
        simulated=False, tom_parameters=GEMINI_PARAMETERS,
    )
    Instrument.objects.create(facility=gs, code="gs-gmos-s", instrument_type="GMOS-S", kind="imaging",
                              filters=["rp"], readout_s=60.0, limiting_mag_60s=24.0)
    return lsc, gs


def test_a_portal_copy_and_a_gemini_copy_complete_once(two_networks, gemini_standin, user) -> None:
    lsc, gs = two_networks
    team = team_create(name="Transients", admins=[user]).group
    now = timezone.now()
    sun = get_sun(Time(now))
    target = Target.objects.create(name="AT 2026abc", type=Target.SIDEREAL, ra=(sun.ra.deg + 180.0) % 360.0, dec=-35.0)
    request = request_submit(
        target=target, team=team, requester=user, telescope_class="1m0",
        exposures=[{"filter": "rp", "exposure_s": 120, "count": 1}],
        # One night (not the next): the second copy has to be at the other network, not Cerro Tololo's tomorrow.
        window_start=now, window_end=now + timedelta(hours=20), success_probability=0.9,
    )
    network_plan(request_ids=[request.pk])
    copies = list(Dispatch.objects.filter(request=request).select_related("facility"))
    assert {d.facility.code for d in copies} >= {"lsc-1m0-a", "gs-gmos"}, [(d.facility.code, d.window_start) for d in copies]
    for copy in copies:
        dispatch_submit(dispatch_id=copy.pk)
    at_gemini = [d for d in Dispatch.objects.filter(request=request, facility=gs)]
    assert all(d.state == DispatchState.SUBMITTED for d in at_gemini), [(d.state, d.reason) for d in at_gemini]
    # Gemini got one trigger per copy, through TOM's own module: the template cloned with this target and window.
    assert len(gemini_standin.triggers) == len(at_gemini)
    trigger = gemini_standin.triggers[0]
    assert trigger.params["target"] == "AT 2026abc" and trigger.status == "Prepared/Ready"
    assert trigger.params["obsnum"] == "1" and trigger.params["exptime"] == "120"
    assert trigger.params["windowDuration"] and trigger.params["elevationType"] == "airmass"
    # ...recorded as that module's own observation, so TOM's pages know it as a Gemini observation.
    record = ObservationRecord.objects.get(pk=at_gemini[0].observation_record_id)
    assert record.facility == "GEM" and record.observation_id == trigger.observation_id.rsplit("-", 1)[-1]

    # The portal copy is observed under a clear sky.
    [at_lsc, *_] = sorted(Dispatch.objects.filter(request=request, facility=lsc), key=lambda d: d.window_start)
    group = SimRequestGroup.objects.get(name=at_lsc.idempotency_key)
    slot = SimObservation.objects.filter(request__group=group).get()
    sim_weather_set(site=lsc.site, state="clear", hours=48, now=slot.start - timedelta(minutes=5))
    sim_tick(now=slot.end + timedelta(minutes=1))
    dispatch_poll(dispatch_id=at_lsc.pk)

    request.refresh_from_db()
    assert request.state == RequestState.COMPLETED and request.visits_completed == 1
    # Its Gemini twin is withdrawn; TOM's Gemini module cannot cancel, so the copy says who must be told.
    for twin in at_gemini:
        dispatch_cancel_remote(dispatch_id=twin.pk)
        twin.refresh_from_db()
        assert twin.state == DispatchState.CANCELLED
        assert "tell gs-gmos by hand" in twin.reason
    # Nothing was sent twice: submitting again does nothing.
    for copy in copies:
        dispatch_submit(dispatch_id=copy.pk)
    assert len(gemini_standin.triggers) == len(at_gemini)
    assert ObservingRequest.objects.get(pk=request.pk).transitions.filter(to_state=RequestState.COMPLETED).count() == 1


def test_a_tom_module_copy_is_never_submitted_twice(two_networks, gemini_standin, user) -> None:
    _, gs = two_networks
    team = team_create(name="Transients", admins=[user]).group
    now = timezone.now()
    target = Target.objects.create(name="AT 2026abd", type=Target.SIDEREAL, ra=10.0, dec=-35.0)
    request = ObservingRequest.objects.create(
        target=target, team=team, telescope_class="1m0", exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}],
        window_start=now, window_end=now + timedelta(hours=30),
    )
    # A worker died during an earlier attempt: the facility may or may not have the trigger, and it cannot be asked.
    crashed = Dispatch.objects.create(request=request, facility=gs, window_start=now, window_end=now + timedelta(hours=8),
                                      p_success=0.7, duration_s=300, submit_attempts=1)
    dispatch_submit(dispatch_id=crashed.pk)
    crashed.refresh_from_db()
    assert crashed.state == DispatchState.FAILED_OTHER and "not sent again" in crashed.reason
    assert gemini_standin.triggers == []
    # A copy the module's own form refuses (Gemini takes 1-1200 s exposures) fails with the form's words.
    request.exposures = [{"filter": "rp", "exposure_s": 3000, "count": 1}]
    request.save()
    refused = Dispatch.objects.create(request=request, facility=gs, window_start=now, window_end=now + timedelta(hours=8),
                                      p_success=0.7, duration_s=300)
    dispatch_submit(dispatch_id=refused.pk)
    refused.refresh_from_db()
    assert refused.state == DispatchState.FAILED_OTHER and "1200" in refused.reason, refused.reason
    assert gemini_standin.triggers == []
