"""The LCO request-group payload builder."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from observatories.adapters import Exposure, request_group_payload
from observatories.models import Instrument

pytestmark = pytest.mark.django_db

START, END = datetime(2026, 6, 15, 20, tzinfo=UTC), datetime(2026, 6, 16, 12, tzinfo=UTC)


def build(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "target_name": "SN 2023ixf",
        "ra_deg": 210.910675,
        "dec_deg": 54.3116944,
        "instrument": Instrument.objects.get(code="elp-1m0-a-sinistro"),
        "exposures": [Exposure(filter="gp", exposure_time_s=120, count=3)],
        "window_start": START,
        "window_end": END,
        "proposal": "LCO2026A-007",
    }
    kwargs.update(overrides)
    return request_group_payload(**kwargs)


def test_builds_an_lco_request_group() -> None:
    payload = build(max_airmass=1.8, min_lunar_distance_deg=45, ipp_value=1.2, target_mag=11.5)
    assert payload == {
        "name": "baton-validate",
        "proposal": "LCO2026A-007",
        "ipp_value": 1.2,
        "operator": "SINGLE",
        "observation_type": "NORMAL",
        "requests": [
            {
                "acceptability_threshold": 90,
                "configurations": [
                    {
                        "type": "EXPOSE",
                        "instrument_type": "1M0-SCICAM-SINISTRO",
                        "target": {
                            "name": "SN 2023ixf", "type": "ICRS", "ra": 210.910675, "dec": 54.3116944, "epoch": 2000.0,
                            "extra_params": {"v_magnitude": 11.5},
                        },
                        "constraints": {"max_airmass": 1.8, "min_lunar_distance": 45.0},
                        "acquisition_config": {"mode": "OFF", "extra_params": {}},
                        "guiding_config": {"mode": "ON", "optional": True, "extra_params": {}},
                        "instrument_configs": [
                            {"exposure_time": 120.0, "exposure_count": 3, "mode": "full_frame",
                             "optical_elements": {"filter": "gp"}, "extra_params": {}}
                        ],
                    }
                ],
                "windows": [{"start": "2026-06-15T20:00:00Z", "end": "2026-06-16T12:00:00Z"}],
                "location": {"telescope_class": "1m0", "site": "elp"},
            }
        ],
    }


def test_spectrographs_get_spectrum_configurations() -> None:
    payload = build(instrument=Instrument.objects.get(code="coj-2m0-a-floyds"), exposures=[Exposure(filter="slit_1.6as", exposure_time_s=600)])
    config = payload["requests"][0]["configurations"][0]
    assert config["type"] == "SPECTRUM" and config["instrument_type"] == "2M0-FLOYDS-SCICAM"
    # A slit is keyed as the portal's slits group wants it, and a slit needs an acquisition (OFF is refused).
    assert config["instrument_configs"][0]["optical_elements"] == {"slit": "slit_1.6as"}
    assert config["acquisition_config"]["mode"] == "WCS"


def test_goodman_sends_its_grating_with_the_slit() -> None:
    payload = build(instrument=Instrument.objects.get(code="sor-4m0-a-goodman-red"),
                    exposures=[Exposure(filter="slit_1.0as", exposure_time_s=300)])
    config = payload["requests"][0]["configurations"][0]
    assert config["instrument_configs"][0]["optical_elements"] == {"grating": "SYZY_400", "slit": "slit_1.0as"}
    assert config["instrument_configs"][0]["mode"] == "GHTS_R_400m1_2x2"


def test_a_long_target_name_is_cut_and_kept_whole_in_extra_params() -> None:
    name = "Gaia DR3 4057468321929794432 microlensing candidate (KMT)"
    target = build(target_name=name)["requests"][0]["configurations"][0]["target"]
    assert len(name) > 50 and target["name"] == name[:50] and target["extra_params"]["full_name"] == name


def test_a_window_across_a_semester_boundary_is_cut_at_it() -> None:
    payload = build(window_start=datetime(2026, 7, 31, 20, tzinfo=UTC), window_end=datetime(2026, 8, 1, 12, tzinfo=UTC))
    assert payload["requests"][0]["windows"] == [{"start": "2026-07-31T20:00:00Z", "end": "2026-08-01T00:00:00Z"}]
    with pytest.raises(ValueError, match="end of semester 2026A"):
        build(window_start=datetime(2026, 7, 31, 23, 59, tzinfo=UTC), window_end=datetime(2026, 8, 1, 12, tzinfo=UTC),
              min_duration_s=600)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exposures": []}, "at least one exposure"),
        ({"exposures": [Exposure(filter="Halpha", exposure_time_s=60)]}, "has no filter 'Halpha'"),
        ({"proposal": ""}, "no proposal"),
        ({"exposures": [Exposure(filter="gp", exposure_time_s=0)]}, "must be positive"),
        ({"window_end": START}, "window_end must be after"),
        ({"window_start": datetime(2026, 6, 15, 20)}, "timezone-aware"),  # noqa: DTZ001 - the point of the test
        ({"max_airmass": 0.9}, "max_airmass"),
        ({"min_lunar_distance_deg": 190}, "min_lunar_distance"),
        ({"dec_deg": 91}, "coordinates out of range"),
    ],
)
def test_bad_input_is_a_clear_value_error(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        build(**overrides)
