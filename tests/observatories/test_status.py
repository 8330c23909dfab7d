"""The facility-status feed: refreshed from the adapters over HTTP, stale after a set age, served by the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from observatories.models import Facility, FacilityStatus
from observatories.selectors import facility_status_current
from observatories.services import facility_status_prune, facility_status_record, facility_status_refresh

from .conftest import Sim


def facility(code: str) -> Facility:
    return Facility.objects.select_related("site").get(code=code)


@pytest.mark.django_db(transaction=True)
def test_refresh_records_available_weather_downtime_and_unknown(sim: Sim) -> None:
    sim.weather("tfn", "clear")
    sim.weather("cpt", "cloudy")
    sim.downtime("elp-1m0-a", reason="power outage")
    now = timezone.now()

    assert facility_status_refresh(facility=facility("tfn-1m0-a"), now=now).state == "available"
    weather = facility_status_refresh(facility=facility("cpt-1m0-a"), now=now)
    assert (weather.state, weather.reason[:28]) == ("weather", "Weather: forced cloudy until")
    down = facility_status_refresh(facility=facility("elp-1m0-a"), now=now)
    assert (down.state, down.reason) == ("downtime", "Downtime: power outage")

    sim.fault("error_500", path="api/telescope_states/", count=10)
    unknown = facility_status_refresh(facility=facility("ogg-2m0-a"), now=now)
    assert unknown.state == "unknown"
    assert unknown.reason.startswith("portal unreachable:")
    assert "HTTP 500" in unknown.reason

    current = facility_status_current(facility=facility("elp-1m0-a"), now=now + timedelta(minutes=1))
    assert (current.state, current.reason, current.stale) == ("downtime", "Downtime: power outage", False)


@pytest.mark.django_db
def test_same_state_extends_the_row_and_old_status_goes_stale(settings) -> None:
    settings.OBSERVATORIES_STATUS_STALE_AFTER_S = 600
    lsc = facility("lsc-1m0-a")
    t0 = timezone.now()
    first = facility_status_record(facility=lsc, state="available", reason="ok", observed_at=None, now=t0)
    again = facility_status_record(facility=lsc, state="available", reason="ok", observed_at=None, now=t0 + timedelta(minutes=5))
    assert again.pk == first.pk
    assert (again.observed_at, again.fetched_at) == (t0, t0 + timedelta(minutes=5))
    assert FacilityStatus.objects.filter(facility=lsc).count() == 1

    fresh = facility_status_current(facility=lsc, now=t0 + timedelta(minutes=14))
    assert (fresh.state, fresh.stale) == ("available", False)
    stale = facility_status_current(facility=lsc, now=t0 + timedelta(minutes=16))
    assert (stale.state, stale.stale) == ("unknown", True)
    assert stale.reason == "stale: last status (available: ok) is 11 min old"
    never = facility_status_current(facility=facility("lsc-1m0-b"), now=t0)
    assert (never.state, never.reason, never.fetched_at) == ("unknown", "no status received yet", None)

    changed = facility_status_record(facility=lsc, state="weather", reason="clouds", observed_at=None, now=t0 + timedelta(minutes=20))
    assert changed.pk != first.pk
    with pytest.raises(ValueError, match="unknown facility state"):
        facility_status_record(facility=lsc, state="sunny", reason="", observed_at=None, now=t0)

    # Pruning keeps the latest row of each facility, however old.
    assert facility_status_prune(now=t0 + timedelta(days=40), keep_days=30) == 1
    assert list(FacilityStatus.objects.values_list("pk", flat=True)) == [changed.pk]


@pytest.mark.django_db
def test_status_feed_api(api_client, client) -> None:
    now = timezone.now()
    facility_status_record(facility=facility("lsc-1m0-a"), state="weather", reason="clouds", observed_at=now, now=now)
    response = api_client.get("/api/observatories/status/")
    assert response.status_code == 200
    rows = {row["facility"]: row for row in response.json()}
    assert len(rows) == Facility.objects.filter(enabled=True).count()
    assert rows["lsc-1m0-a"]["state"] == "weather"
    assert rows["lsc-1m0-a"]["reason"] == "clouds"
    assert rows["lsc-1m0-a"]["site"] == "lsc"
    assert rows["cpt-1m0-a"]["state"] == "unknown"

    facilities = api_client.get("/api/observatories/facilities/").json()
    lsc = next(f for f in facilities if f["code"] == "lsc-1m0-a")
    assert lsc["status"]["state"] == "weather"
    assert lsc["instruments"][0]["code"] == "lsc-1m0-a-sinistro"
    assert api_client.get("/api/observatories/facilities/lsc-1m0-a/").json()["site"] == "lsc"
    assert api_client.get("/api/observatories/facilities/nope/").status_code == 404
    sites = api_client.get("/api/observatories/sites/").json()
    assert len(sites) == 11
    assert sites[0]["code"] == "caha"
    assert client.get("/api/observatories/status/").status_code in (401, 403)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_polls_every_facility_through_a_real_worker(sim: Sim, celery_worker_process) -> None:
    import time

    from observatories.tasks import facility_status_poll

    # The worker is another process: point the facilities at this live server explicitly.
    Facility.objects.update(api_url=sim.base_url)
    sim.downtime("coj-1m0-a", reason="network outage at the site")
    n = Facility.objects.filter(enabled=True).count()

    facility_status_poll.delay()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and FacilityStatus.objects.values("facility").distinct().count() < n:
        time.sleep(0.2)

    assert FacilityStatus.objects.values("facility").distinct().count() == n
    down = FacilityStatus.objects.get(facility__code="coj-1m0-a")
    assert (down.state, down.reason) == ("downtime", "Downtime: network outage at the site")
    assert FacilityStatus.objects.exclude(state__in=["available", "weather", "downtime"]).count() == 0
