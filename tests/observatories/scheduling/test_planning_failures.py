"""What a failed copy tells the next plan: weather spends the site-night, a broken telescope only itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from tom_targets.models import Target

from observatories.models import Facility
from observatories.network import network_load
from observatories.scheduling.models import Dispatch, DispatchState, ObservingRequest
from observatories.scheduling.services.planning import _request_spec
from policies.services import team_create

pytestmark = pytest.mark.django_db


def test_a_broken_telescope_leaves_its_site_mates_that_night(user):
    network_load()
    team = team_create(name="Team", admins=[user]).group
    target = Target.objects.create(name="AT 2026x", type=Target.SIDEREAL, ra=150.0, dec=-30.0)
    now = timezone.now()
    request = ObservingRequest.objects.create(
        target=target, team=team, telescope_class="1m0", exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}],
        window_start=now, window_end=now + timedelta(days=2),
    )
    night = now + timedelta(hours=3)
    broken, clouded = (
        Dispatch.objects.create(request=request, facility=Facility.objects.get(code=code), state=state,
                                window_start=night, window_end=night + timedelta(hours=2), p_success=0.7,
                                duration_s=300, idempotency_key=f"k-{code}")
        for code, state in (("lsc-1m0-a", DispatchState.FAILED_OTHER), ("cpt-1m0-a", DispatchState.FAILED_WEATHER))
    )
    spec = _request_spec(request, live=[], failed=[broken, clouded], load=0, now=now)
    assert spec.excluded_facilities == frozenset({"lsc-1m0-a"})  # the broken telescope is not asked again...
    assert spec.failed == (("cpt", night),)  # ...but only the clouded site's night is spent
