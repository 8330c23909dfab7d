"""Validate the default facility network data file (observatories/data/default_network.json)."""

from __future__ import annotations

import json
import math
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

NETWORK_PATH = Path(__file__).resolve().parents[2] / "observatories" / "data" / "default_network.json"

SITE_KEYS = {
    "code",
    "name",
    "latitude_deg",
    "longitude_deg",
    "elevation_m",
    "timezone",
    "continent",
    "clear_fraction",
    "clear_spell_nights",
    "cloudy_spell_nights",
    "source",
    "facilities",
}
FACILITY_KEYS = {
    "code", "name", "aperture_m", "telescope_class", "instruments", "adapter", "enclosure", "telescope", "default_proposal",
}
INSTRUMENT_KEYS = {
    "code", "kind", "filters", "readout_s", "limiting_mag_60s", "pixel_scale", "instrument_type",
    "optical_element_group", "fixed_optical_elements", "readout_modes", "default_readout_mode", "acquisition_mode",
    "guiding_mode", "guiding_optional",
}
LCO_SITE_CODES = {"lsc", "coj", "cpt", "tfn", "elp", "ogg", "tlv"}


@pytest.fixture(scope="module")
def sites() -> list[dict[str, Any]]:
    with NETWORK_PATH.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, list)
    return data


@pytest.fixture(scope="module")
def facilities(sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [facility for site in sites for facility in site["facilities"]]


def test_network_spans_enough_sites_and_continents(sites: list[dict[str, Any]]) -> None:
    assert len(sites) >= 8
    assert len({site["continent"] for site in sites}) >= 4
    assert LCO_SITE_CODES <= {site["code"] for site in sites}


def test_sites_have_exactly_the_documented_fields(sites: list[dict[str, Any]]) -> None:
    for site in sites:
        assert set(site) == SITE_KEYS, site["code"]


def test_site_values_are_in_range(sites: list[dict[str, Any]]) -> None:
    for site in sites:
        code = site["code"]
        assert -90.0 <= site["latitude_deg"] <= 90.0, code
        assert -180.0 <= site["longitude_deg"] <= 180.0, code
        assert 0.0 <= site["elevation_m"] <= 5500.0, code
        assert 0.0 < site["clear_fraction"] < 1.0, code
        assert site["clear_spell_nights"] >= 1.0, code
        assert site["cloudy_spell_nights"] >= 1.0, code
        zoneinfo.ZoneInfo(site["timezone"])  # raises for an unknown IANA name
        assert site["name"].strip(), code


def test_weather_spells_reproduce_the_clear_fraction(sites: list[dict[str, Any]]) -> None:
    # A two-state Markov chain with these mean spell lengths spends
    # clear / (clear + cloudy) of its nights clear.
    for site in sites:
        clear, cloudy = site["clear_spell_nights"], site["cloudy_spell_nights"]
        assert math.isclose(clear / (clear + cloudy), site["clear_fraction"], abs_tol=0.02), site["code"]


def test_every_site_cites_its_sources(sites: list[dict[str, Any]]) -> None:
    for site in sites:
        source = site["source"]
        assert set(source) >= {"coordinates", "clear_fraction"}, site["code"]
        for text in source.values():
            assert isinstance(text, str)
            assert len(text.strip()) > 10, site["code"]


def test_published_clear_fractions_are_the_cited_ones(sites: list[dict[str, Any]]) -> None:
    by_code = {site["code"]: site for site in sites}
    assert by_code["lsc"]["clear_fraction"] == pytest.approx(0.80)
    assert by_code["tfn"]["clear_fraction"] == pytest.approx(0.686)
    assert by_code["mko"]["clear_fraction"] == pytest.approx(0.76)
    assert "Steinbring" in by_code["mko"]["source"]["clear_fraction"]
    assert "Cavazzani" in by_code["tfn"]["source"]["clear_fraction"]


def test_codes_are_unique(sites: list[dict[str, Any]], facilities: list[dict[str, Any]]) -> None:
    site_codes = [site["code"] for site in sites]
    facility_codes = [facility["code"] for facility in facilities]
    instrument_codes = [
        instrument["code"] for facility in facilities for instrument in facility["instruments"]
    ]
    for codes in (site_codes, facility_codes, instrument_codes):
        assert len(codes) == len(set(codes))


def test_every_facility_belongs_to_its_site(sites: list[dict[str, Any]]) -> None:
    site_codes = {site["code"] for site in sites}
    for site in sites:
        assert site["facilities"], f"site {site['code']} has no facility"
        for facility in site["facilities"]:
            prefix = facility["code"].split("-", 1)[0]
            assert prefix in site_codes
            assert prefix == site["code"], facility["code"]


def test_facilities_are_a_realistic_mix(facilities: list[dict[str, Any]]) -> None:
    assert 15 <= len(facilities) <= 25
    classes = [facility["telescope_class"] for facility in facilities]
    assert classes.count("1m0") >= 8
    assert {"0m4", "1m0", "2m0"} <= set(classes)
    assert any(facility["aperture_m"] > 2.0 for facility in facilities)
    one_metre_sites = {f["code"].split("-")[0] for f in facilities if f["telescope_class"] == "1m0"}
    assert {"lsc", "cpt", "coj", "elp"} <= one_metre_sites
    two_metre_sites = {f["code"].split("-")[0] for f in facilities if f["telescope_class"] == "2m0"}
    assert {"ogg", "coj"} <= two_metre_sites


def test_facility_and_instrument_values_are_valid(facilities: list[dict[str, Any]]) -> None:
    for facility in facilities:
        code = facility["code"]
        assert set(facility) == FACILITY_KEYS, code
        assert 0.1 <= facility["aperture_m"] <= 12.0, code
        # The class names the aperture, LCO style: "1m0" is 1.0 m, "0m4" 0.4 m.
        metres, _, decimetres = facility["telescope_class"].partition("m")
        assert abs(float(f"{metres}.{decimetres}") - facility["aperture_m"]) < 0.15, code
        assert facility["adapter"] == "observatories.adapters.PortalFacility", code
        assert facility["instruments"], code
        for instrument in facility["instruments"]:
            assert set(instrument) == INSTRUMENT_KEYS, instrument["code"]
            assert instrument["code"].startswith(code), instrument["code"]
            assert instrument["kind"] in {"imaging", "spectra"}
            assert isinstance(instrument["filters"], list)
            assert all(isinstance(name, str) and name for name in instrument["filters"])
            # Described as the portal describes it: a shared instrument type, its readout modes, its element group.
            assert instrument["instrument_type"] and instrument["instrument_type"] == instrument["instrument_type"].upper()
            assert instrument["default_readout_mode"] in instrument["readout_modes"], instrument["code"]
            slit = instrument["optical_element_group"] == "slit"
            assert (instrument["acquisition_mode"] in {"WCS", "BRIGHTEST"}) if slit else instrument["acquisition_mode"] == "OFF"
            if instrument["kind"] == "imaging":
                assert instrument["filters"], instrument["code"]
            assert 0.0 < instrument["readout_s"] <= 300.0
            assert 8.0 <= instrument["limiting_mag_60s"] <= 26.0
            assert 0.01 <= instrument["pixel_scale"] <= 5.0
