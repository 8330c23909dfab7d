"""The portal client against the simulated network over real HTTP: submit, poll, cancel, failures, faults."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from observatories.adapters import (
    FailureKind,
    PortalClient,
    PortalError,
    PortalUnavailable,
    RequestState,
    portal_client_for,
)
from observatories.simnet.models import SimRequestGroup
from observatories.simnet.services import NEVER_VISIBLE

from .conftest import EVENING, NEXT_MORNING, POLARIS, WINDOW, Sim, bulge_payload

pytestmark = pytest.mark.django_db(transaction=True)


def lsc_client(**options: object) -> PortalClient:
    from observatories.models import Facility

    return portal_client_for(Facility.objects.select_related("site").get(code="lsc-1m0-a"), **options)


def test_submit_poll_complete(sim: Sim) -> None:
    sim.tick(EVENING)
    sim.weather("lsc", "clear")
    client = lsc_client()

    submitted = client.submit(payload=bulge_payload(), idempotency_key="key-complete-1")

    assert submitted.state is RequestState.PENDING
    assert submitted.name == "key-complete-1"
    # The same key again (a retried task, a double click) is the same request group.
    assert client.submit(payload=bulge_payload(), idempotency_key="key-complete-1").remote_id == submitted.remote_id
    assert SimRequestGroup.objects.count() == 1
    assert submitted.scheduled_start is not None and submitted.scheduled_end is not None
    assert WINDOW[0] < submitted.scheduled_start < submitted.scheduled_end < WINDOW[1]
    # Scheduled after nautical twilight at Cerro Tololo (sunset ~21:55 UTC in mid-June).
    assert submitted.scheduled_start > datetime(2026, 6, 15, 22, 30, tzinfo=UTC)
    assert client.status(remote_id=submitted.remote_id).state is RequestState.PENDING

    assert sim.tick(NEXT_MORNING) == {"now": "2026-06-16T12:00:00Z", "completed": 1, "failed": 0}

    done = client.status(remote_id=submitted.remote_id)
    assert done.state is RequestState.COMPLETED
    assert done.failure_kind is None and done.reason == ""
    # The attempt is reported; its data are in the science archive, not in the observation record.
    [attempt] = done.attempts
    assert (attempt.state, attempt.site, attempt.failed) == ("COMPLETED", "lsc", False)
    assert attempt.telescope in {"1m0a"} and submitted.scheduled_start == attempt.start
    # Cancelling a completed request is not an error: the caller learns it completed.
    assert client.cancel(remote_id=submitted.remote_id).state is RequestState.COMPLETED
    # A second tick decides nothing more.
    assert sim.tick(NEXT_MORNING)["completed"] == 0


def test_weather_downtime_and_cancel_in_one_night(sim: Sim) -> None:
    from observatories.models import Facility

    def client_for(code: str) -> PortalClient:
        return portal_client_for(Facility.objects.select_related("site").get(code=code))

    sim.tick(EVENING)
    sim.weather("lsc", "cloudy", hours=24)  # a site made cloudy by the test
    sim.weather("cpt", "clear")
    sim.weather("coj", "clear")
    sim.downtime("cpt-1m0-a", reason="dome shutter fault")
    lsc, cpt, coj = client_for("lsc-1m0-a"), client_for("cpt-1m0-a"), client_for("coj-1m0-a")
    at_lsc = lsc.submit(payload=bulge_payload(), idempotency_key="key-cloudy")
    at_cpt = cpt.submit(payload=bulge_payload(instrument_code="cpt-1m0-a-sinistro"), idempotency_key="key-down")
    at_coj = coj.submit(payload=bulge_payload(instrument_code="coj-1m0-a-sinistro"), idempotency_key="key-cancel")

    # Cancelling a pending request is idempotent, and it is never observed.
    assert coj.cancel(remote_id=at_coj.remote_id).state is RequestState.CANCELED
    assert coj.cancel(remote_id=at_coj.remote_id).state is RequestState.CANCELED

    assert sim.tick(NEXT_MORNING) == {"now": "2026-06-16T12:00:00Z", "completed": 0, "failed": 2}

    # As at LCO, a failed observation does not end the group: it stays PENDING and the portal tries again.
    cloudy = lsc.status(remote_id=at_lsc.remote_id)
    assert cloudy.state is RequestState.PENDING and cloudy.reason == ""
    [failed] = cloudy.failed_attempts
    assert failed.failure_kind is FailureKind.WEATHER
    assert failed.reason.startswith("Weather: not ok to open at lsc")

    down = cpt.status(remote_id=at_cpt.remote_id)
    [failed] = down.failed_attempts
    assert (down.state, failed.failure_kind) == (RequestState.PENDING, FailureKind.DOWNTIME)
    assert failed.reason == "Downtime: cpt.doma.1m0a: dome shutter fault"

    assert coj.status(remote_id=at_coj.remote_id).state is RequestState.CANCELED
    # The window closes with every retry under cloud: the group expires, with the last attempt's reason.
    for k in range(60):  # each tick decides the retries that are due and schedules the next
        sim.tick(NEXT_MORNING + timedelta(seconds=k + 1))
        if SimRequestGroup.objects.get(name="key-cloudy").state != "PENDING":
            break
    expired = lsc.status(remote_id=at_lsc.remote_id)
    assert len(expired.failed_attempts) > 3  # the portal kept trying all night
    assert expired.state in (RequestState.WINDOW_EXPIRED, RequestState.FAILED), expired
    assert expired.failure_kind is FailureKind.WEATHER
    # An ended group cannot be cancelled (400 at the portal); the client reports what it is instead of failing.
    assert lsc.cancel(remote_id=at_lsc.remote_id).state is expired.state


def test_ambiguous_and_transient_failures_never_duplicate(sim: Sim) -> None:
    sim.tick(EVENING)
    cases = [
        ("error_500", 0.0, 10.0),  # refused before doing anything: retried
        ("error_500_after", 0.0, 10.0),  # done, then 500: found by its key, not re-submitted
        ("delay_after", 1.5, 0.5),  # done, answered too late: the client times out, then finds it
    ]
    for kind, delay_s, timeout_s in cases:
        sim.fault(kind, path="api/requestgroups/", method="POST", delay_s=delay_s)
        remote = lsc_client(timeout_s=timeout_s).submit(payload=bulge_payload(), idempotency_key=f"key-{kind}")
        assert remote.state is RequestState.PENDING
        assert remote.name == f"key-{kind}"
        assert SimRequestGroup.objects.filter(name=f"key-{kind}").count() == 1, kind
    assert SimRequestGroup.objects.count() == 3


def test_bad_input_gets_a_clear_error_and_creates_nothing(sim: Sim) -> None:
    sim.tick(EVENING)
    client = lsc_client()

    # A target below the horizon all window (Polaris from Chile): refused with the portal's reason.
    polaris = bulge_payload(target=POLARIS)
    with pytest.raises(PortalError) as refused:
        client.submit(payload=polaris, idempotency_key="key-polaris")
    assert refused.value.status_code == 400
    assert refused.value.messages == [f"requests.0: {NEVER_VISIBLE}"]
    assert client.validate(payload=polaris) == [f"requests.0: {NEVER_VISIBLE}"]
    assert client.validate(payload=bulge_payload()) == []

    # An unknown facility/instrument, no windows, a filter the camera lacks.
    unknown = bulge_payload()
    unknown["requests"][0]["configurations"][0]["instrument_type"] = "xyz-9m9-a-nothing"
    with pytest.raises(PortalError, match="Invalid instrument type xyz-9m9-a-nothing. Valid instruments may include"):
        client.submit(payload=unknown, idempotency_key="key-unknown")
    no_windows = bulge_payload()
    no_windows["requests"][0]["windows"] = []
    with pytest.raises(PortalError, match="at least one window is required"):
        client.submit(payload=no_windows, idempotency_key="key-nowin")
    bad_filter = bulge_payload()
    bad_filter["requests"][0]["configurations"][0]["instrument_configs"][0]["optical_elements"]["filter"] = "Halpha"
    with pytest.raises(PortalError, match="optical element Halpha of type filter is not available"):
        client.submit(payload=bad_filter, idempotency_key="key-badfilter")
    with pytest.raises(PortalError, match="idempotency key"):
        client.submit(payload=bulge_payload(), idempotency_key="x" * 51)
    with pytest.raises(PortalError, match="HTTP 404"):
        client.status(remote_id="999999")
    with pytest.raises(PortalError, match="not a request-group id"):
        client.status(remote_id="../etc")

    # A wrong token is permanent, not retried.
    with pytest.raises(PortalError) as unauthorised:
        PortalClient(base_url=sim.base_url, token="wrong", retries=0).status(remote_id="1")
    assert unauthorised.value.status_code == 403
    assert unauthorised.value.messages == ["Invalid token."]

    # A portal that keeps answering 500: unavailable after the retries.
    sim.fault("error_500", path="api/requestgroups/", count=100)
    with pytest.raises(PortalUnavailable, match="3 attempts"):
        lsc_client(retries=2).submit(payload=bulge_payload(), idempotency_key="key-500")
    with pytest.raises(PortalUnavailable):
        client.status(remote_id="1")
    assert SimRequestGroup.objects.count() == 0


def test_telescope_states_follow_weather_and_downtime(sim: Sim) -> None:
    sim.tick(EVENING)
    sim.weather("lsc", "clear")
    sim.weather("cpt", "cloudy")
    sim.downtime("lsc-1m0-b", reason="mirror recoating")
    from observatories.models import Facility

    def state(code: str) -> tuple[str, str]:
        result = portal_client_for(Facility.objects.select_related("site").get(code=code)).facility_state()
        return result.state, result.reason

    assert state("lsc-1m0-a") == ("available", "Available for scheduling")
    assert state("lsc-1m0-b") == ("downtime", "Downtime: mirror recoating")
    assert state("cpt-1m0-a")[0] == "weather"
    assert state("cpt-1m0-a")[1].startswith("Weather: forced cloudy until")
    sim.post("api/downtime/clear/", {"facility": "lsc-1m0-b"})
    assert state("lsc-1m0-b")[0] == "available"


def test_instruments_refresh_from_the_portals_description(sim: Sim) -> None:
    from django.core.management import call_command

    from observatories.models import Instrument

    stale = Instrument.objects.get(code="lsc-1m0-a-sinistro")
    stale.readout_modes, stale.default_readout_mode, stale.filters = ["default"], "default", ["V"]
    stale.save()
    out = io.StringIO()
    call_command("observatories_refresh_instruments", "--facility", "lsc-1m0-a", stdout=out)
    stale.refresh_from_db()
    # As the portal's api/instruments/ describes the type every 1-m carries.
    assert stale.default_readout_mode == "full_frame" and "central_2k_2x2" in stale.readout_modes
    assert "rp" in stale.filters and stale.optical_element_group == "filter"
    assert "lsc-1m0-a: 1 instrument(s) updated lsc-1m0-a-sinistro" in out.getvalue()
    call_command("observatories_refresh_instruments", "--facility", "lsc-1m0-a", stdout=out)
    assert out.getvalue().strip().endswith("lsc-1m0-a: 0 instrument(s) updated")
