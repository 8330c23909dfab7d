"""The simulated network itself: the weather chain, the clock, and its control endpoints' errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from observatories.models import Site
from observatories.simnet.services import (
    night_of,
    sim_clock_set,
    sim_now,
    sim_request_group_validate,
    site_weather_at,
    weather_prior_clear,
)

from .conftest import Sim


@pytest.mark.django_db
def test_weather_chain_follows_the_prior_and_is_reproducible() -> None:
    for site in Site.objects.all():
        nights = [date(2001, 1, 1) + timedelta(days=k) for k in range(20000)]
        clear = np.array([weather_prior_clear(site=site, night=n, seed=7) for n in nights])
        assert abs(clear.mean() - site.clear_fraction) < 0.04, site.code
        # Mean clear-spell length close to the prior's.
        changes = np.flatnonzero(np.diff(clear.astype(int)))
        spells = np.diff(changes)[::2]
        assert spells.size > 100
        again = [weather_prior_clear(site=site, night=n, seed=7) for n in nights[:200]]
        assert again == list(clear[:200])
    lsc = Site.objects.get(code="lsc")
    a = [weather_prior_clear(site=lsc, night=date(2026, 1, 1) + timedelta(days=k), seed=1) for k in range(365)]
    b = [weather_prior_clear(site=lsc, night=date(2026, 1, 1) + timedelta(days=k), seed=2) for k in range(365)]
    assert a != b


@pytest.mark.django_db
def test_night_spans_local_midnight() -> None:
    lsc = Site.objects.get(code="lsc")  # UTC-4.7 h in mean solar time
    evening = datetime(2026, 6, 15, 23, 0, tzinfo=UTC)
    morning = datetime(2026, 6, 16, 9, 0, tzinfo=UTC)
    assert night_of(site=lsc, at=evening) == night_of(site=lsc, at=morning) == date(2026, 6, 15)
    coj = Site.objects.get(code="coj")  # UTC+9.9 h
    assert night_of(site=coj, at=datetime(2026, 6, 15, 10, 0, tzinfo=UTC)) == date(2026, 6, 15)


@pytest.mark.django_db
def test_clock_is_injectable() -> None:
    target = datetime(2030, 1, 1, tzinfo=UTC)
    sim_clock_set(now=target)
    assert abs((sim_now() - target).total_seconds()) < 5
    with pytest.raises(ValueError):
        sim_clock_set(now=datetime(2030, 1, 1))  # noqa: DTZ001 - the point of the test


@pytest.mark.django_db(transaction=True)
def test_control_endpoints(sim: Sim) -> None:
    assert sim.tick(datetime(2026, 6, 15, 20, tzinfo=UTC))["now"] == "2026-06-15T20:00:00Z"
    assert sim.post("api/tick/", {"advance_s": 3600})["now"].startswith("2026-06-15T21:00")
    assert sim.get("api/clock/")["now"].startswith("2026-06-15T21:00")
    weather = sim.weather("tlv", "cloudy", hours=2)
    assert weather["sites"]["tlv"]["state"] == "cloudy"
    assert site_weather_at(site=Site.objects.get(code="tlv"), at=sim_now() + timedelta(hours=3)).reason.endswith("(weather prior)")
    assert sim.post("api/weather/", {"site": "tlv", "state": "prior"})["sites"]["tlv"]["reason"].endswith("(weather prior)")
    assert sim.post("api/weather/", {"site": "nowhere", "state": "clear"}, status=400) == {"site": ["unknown site 'nowhere'"]}
    assert sim.post("api/weather/", {"site": "tlv", "state": "foggy"}, status=400)["state"][0].startswith("state must be")
    assert sim.post("api/downtime/", {"facility": "nope"}, status=400) == {"facility": ["unknown facility 'nope'"]}
    assert sim.post("api/downtime/clear/", {"facility": "tlv-1m0-a"}) == {"facility": "tlv-1m0-a", "cleared": 0}
    assert sim.post("api/faults/", {"kind": "explode"}, status=400)["kind"][0].startswith("kind must be")
    sim.fault("error_500", path="api/telescope_states/", count=3)
    assert sim.post("api/faults/clear/") == {"cleared": 1}
    assert sim.post("api/tick/", {"now": "yesterday"}, status=400)["detail"].startswith("bad now")
    unauthenticated = sim.session.post(sim.base_url + "api/tick/", json={}, headers={"Authorization": "Token nope"}, timeout=10)
    assert unauthenticated.status_code == 401
    assert sim.session.get(sim.base_url + "api/tick/", timeout=10).status_code == 405
    assert sim.session.post(sim.base_url + "api/requestgroups/", data=b"{not json", timeout=10).status_code == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "name": json_values, "ipp_value": json_values, "operator": json_values, "observation_type": json_values,
            "requests": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "configurations": st.lists(
                            st.fixed_dictionaries(
                                {"instrument_type": st.sampled_from(["lsc-1m0-a-sinistro", "nope"]) | json_values},
                                optional={
                                    "type": json_values, "target": json_values, "constraints": json_values,
                                    "instrument_configs": json_values,
                                },
                            ),
                            max_size=2,
                        ) | json_values,
                        "windows": json_values, "location": json_values, "acceptability_threshold": json_values,
                    },
                ),
                max_size=2,
            ) | json_values,
        },
    ) | json_values
)
def test_any_json_gets_field_errors_never_an_exception(payload: object) -> None:
    errors, scheduled = sim_request_group_validate(payload=payload, now=datetime(2026, 6, 15, 20, tzinfo=UTC))
    assert errors
    assert scheduled == []


@pytest.mark.django_db
def test_windows_are_bounded() -> None:
    from .conftest import bulge_payload

    payload = bulge_payload(window_end=datetime(2027, 8, 1, tzinfo=UTC))
    errors, _ = sim_request_group_validate(payload=payload, now=datetime(2026, 6, 15, 20, tzinfo=UTC))
    assert errors == {"requests": [{"windows": ["a window may be at most 366 days long"]}]}
    # A 20-day window is searched in chunks and scheduled on its first night.
    payload = bulge_payload(window_end=datetime(2026, 7, 5, tzinfo=UTC))
    errors, [(checked, (start, end))] = sim_request_group_validate(payload=payload, now=datetime(2026, 6, 15, 20, tzinfo=UTC))
    assert errors == {}
    assert datetime(2026, 6, 15, 22, tzinfo=UTC) < start < datetime(2026, 6, 16, 10, tzinfo=UTC)
    assert (end - start).total_seconds() == checked.duration_s == 30 + 60 + (60 + 28) * 2 + (30 + 28)
