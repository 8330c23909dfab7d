"""The simulated network itself: the weather chain, the clock, and its control endpoints' errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from observatories.models import Site
from observatories.simnet.models import SimRequestGroup
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
    assert unauthenticated.status_code == 403  # as the portal's DRF stack answers (session authentication first)
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

    payload = bulge_payload()
    payload["requests"][0]["windows"] = [{"start": "2026-06-15T20:00:00Z", "end": "2027-08-01T00:00:00Z"}]
    errors, _ = sim_request_group_validate(payload=payload, now=datetime(2026, 6, 15, 20, tzinfo=UTC))
    assert errors == {"requests": [{"windows": ["a window may be at most 366 days long"]}]}
    # A 20-day window is searched in chunks and scheduled on its first night.
    payload = bulge_payload(window_end=datetime(2026, 7, 5, tzinfo=UTC))
    errors, [(checked, slot)] = sim_request_group_validate(payload=payload, now=datetime(2026, 6, 15, 20, tzinfo=UTC))
    start, end = slot.start, slot.end
    assert errors == {}
    assert datetime(2026, 6, 15, 22, tzinfo=UTC) < start < datetime(2026, 6, 16, 10, tzinfo=UTC)
    assert (end - start).total_seconds() == checked.duration_s == 30 + 60 + (60 + 28) * 2 + (30 + 28)


# -- what the real portal refuses, the simulator refuses: same status codes and error shapes ----------------------


def _config(payload: dict) -> dict:
    return payload["requests"][0]["configurations"][0]


REFUSALS = [
    # (what is wrong, how to break the payload, where the portal puts its error, the message)
    ("no name", lambda p: p.pop("name"), ("name",), "This field is required."),
    ("name over 50", lambda p: p.update(name="n" * 51), ("name",), "Ensure this field has no more than 50 characters."),
    ("unknown proposal", lambda p: p.update(proposal="baton"), ("proposal",), 'Invalid pk "baton" - object does not exist.'),
    ("Baton's own instrument code", lambda p: _config(p).update(instrument_type="lsc-1m0-a-sinistro"),
     ("requests", 0, "configurations", 0, "instrument_type", 0), "Invalid instrument type lsc-1m0-a-sinistro. Valid"),
    ("readout mode 'default'", lambda p: _config(p)["instrument_configs"][0].update(mode="default"),
     ("requests", 0, "configurations", 0, "non_field_errors", 0),
     "Readout mode default is not available for instrument type 1M0-SCICAM-SINISTRO"),
    ("a filter the camera lacks", lambda p: _config(p)["instrument_configs"][0].update(optical_elements={"filter": "Ha"}),
     ("requests", 0, "configurations", 0, "non_field_errors", 0), "optical element Ha of type filter is not available"),
    ("ipp out of range", lambda p: p.update(ipp_value=2.5), ("non_field_errors", 0),
     "requestgroups ipp_value must be >= 0.5, <= 2.0"),
    ("unknown site", lambda p: p["requests"][0]["location"].update(site="xyz"), ("requests", 0, "location", "site", 0),
     '"xyz" is not a valid choice.'),
    ("a window in the past", lambda p: p["requests"][0]["windows"][0].update(start="2026-06-01T00:00:00Z", end="2026-06-02T00:00:00Z"),
     ("requests", 0, "windows", 0, "end", 0), "Window end time must be in the future"),
    ("target name over 50", lambda p: _config(p)["target"].update(name="t" * 51),
     ("requests", 0, "configurations", 0, "target", "name", 0), "Ensure this field has no more than 50 characters."),
    ("window across semesters", lambda p: p["requests"][0]["windows"][0].update(end="2026-08-02T00:00:00Z"),
     ("requests", 0, "windows", 0, "non_field_errors", 0), "The observation window does not fit within any defined semester."),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("what", "breaks", "where", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refuses_what_the_portal_refuses(sim, what, breaks, where, message) -> None:
    from .conftest import EVENING, bulge_payload

    sim.tick(EVENING)
    payload = {**bulge_payload(), "name": "refusal-test"}
    breaks(payload)
    response = sim.session.post(sim.base_url + "api/requestgroups/", json=payload, timeout=30)
    assert response.status_code == 400, (what, response.text)
    node = response.json()
    for key in where:
        node = node[key]
    node = node[0] if isinstance(node, list) else node
    assert str(node).startswith(message), (what, response.json())
    assert SimRequestGroup.objects.count() == 0
    # validate/ answers 200 with the same errors, as the portal does.
    checked = sim.post("api/requestgroups/validate/", payload)
    assert checked["errors"] == response.json()


@pytest.mark.django_db(transaction=True)
def test_a_spectrograph_needs_its_slit_and_an_acquisition(sim) -> None:
    from .conftest import EVENING, bulge_payload

    sim.tick(EVENING)
    from observatories.adapters import Exposure

    payload = bulge_payload(instrument_code="coj-2m0-a-floyds", exposures=[Exposure(filter="slit_1.6as", exposure_time_s=300)],
                            target={"name": "bulge", "ra": 268.53, "dec": -30.47})
    config = _config(payload)
    config["instrument_configs"][0]["optical_elements"] = {"filter": "slit_1.6as"}
    config["acquisition_config"] = {"mode": "OFF"}
    errors = sim.post("api/requestgroups/validate/", payload)["errors"]
    config_errors = errors["requests"][0]["configurations"][0]
    assert config_errors["non_field_errors"] == [
        "Acquisition mode OFF is not available for instrument type 2M0-FLOYDS-SCICAM",
        "optical_element of type filter is not available on 2M0-FLOYDS-SCICAM instruments",
        "Must set optical element of type slit for instrument type 2M0-FLOYDS-SCICAM",
    ]


@pytest.mark.django_db(transaction=True)
def test_pages_cancel_and_telescope_keys_are_the_portals(sim) -> None:
    from .conftest import EVENING, bulge_payload

    sim.tick(EVENING)
    for n in range(3):
        sim.post("api/requestgroups/", {**bulge_payload(), "name": f"paged-{n}"}, status=201)
    first = sim.get("api/requestgroups/?limit=2")
    assert first["count"] == 3 and first["previous"] is None and "offset=2" in first["next"]
    second = sim.session.get(first["next"], timeout=30).json()
    assert [g["name"] for g in second["results"]] == ["paged-0"] and second["next"] is None
    assert second["previous"] is not None
    # A second cancel is not an error at the portal: 200 with the group as it is.
    group_id = second["results"][0]["id"]
    assert sim.post(f"api/requestgroups/{group_id}/cancel/")["state"] == "CANCELED"
    assert sim.post(f"api/requestgroups/{group_id}/cancel/")["state"] == "CANCELED"
    # Telescopes are keyed site.enclosure.telescope; instrument types are shared by every 1-m.
    states = sim.get("api/telescope_states/")
    assert "lsc.doma.1m0a" in states and states["lsc.doma.1m0a"][0]["telescope"] == "lsc.doma.1m0a"
    instruments = sim.get("api/instruments/")
    sinistro = instruments["1M0-SCICAM-SINISTRO"]
    assert sinistro["class"] == "1m0" and sinistro["modes"]["readout"]["default"] == "full_frame"
    assert "rp" in [e["code"] for e in sinistro["optical_elements"]["filters"]]
    assert instruments["2M0-FLOYDS-SCICAM"]["modes"]["acquisition"]["default"] == "WCS"


@pytest.mark.django_db(transaction=True)
def test_one_observation_at_a_time_per_telescope(sim) -> None:
    from observatories.simnet.models import SimObservation

    from .conftest import EVENING, bulge_payload

    sim.tick(EVENING)
    for n in range(5):
        sim.post("api/requestgroups/", {**bulge_payload(), "name": f"busy-{n}"}, status=201)
    slots: dict[str, list[tuple]] = {}
    for obs in SimObservation.objects.select_related("facility"):
        slots.setdefault(obs.facility.code, []).append((obs.start, obs.end))
    for code, spans in slots.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"{code} observes two things at once"
    assert len(slots) > 1  # the group went to any 1-m at lsc, not always dome A
