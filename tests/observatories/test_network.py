"""The default network in the database: loaded by the migration, idempotent loader, system checks."""

from __future__ import annotations

import json

import pytest
from django.core.checks import run_checks

from observatories.models import Facility, Instrument, Site
from observatories.network import DEFAULT_NETWORK_PATH, network_load

pytestmark = pytest.mark.django_db


def test_the_migration_loads_the_default_network_with_real_coordinates() -> None:
    data = json.loads(DEFAULT_NETWORK_PATH.read_text())
    assert Site.objects.count() == len(data) >= 8
    assert len(set(Site.objects.values_list("continent", flat=True))) >= 4
    lsc = Site.objects.get(code="lsc")
    assert (lsc.latitude_deg, lsc.longitude_deg, lsc.elevation_m) == (-30.167, -70.805, 2198)
    assert lsc.timezone == "America/Santiago"
    assert lsc.clear_fraction == 0.8
    assert "CTIO" in lsc.source["clear_fraction"]
    assert Facility.objects.count() == sum(len(s["facilities"]) for s in data)
    assert Instrument.objects.count() == sum(len(f["instruments"]) for s in data for f in s["facilities"])
    facility = Facility.objects.get(code="coj-2m0-a")
    assert facility.site.code == "coj"
    assert (facility.telescope_class, facility.aperture_m, facility.simulated, facility.enabled) == ("2m0", 2.0, True, True)
    assert sorted(facility.instruments.values_list("kind", flat=True)) == ["imaging", "spectra"]


def test_the_loader_is_idempotent_and_keeps_what_operators_set(settings) -> None:
    assert network_load().created == 0
    assert network_load().updated == 0
    Site.objects.filter(code="lsc").update(clear_fraction=0.1)
    Facility.objects.filter(code="lsc-1m0-a").update(enabled=False, api_url="https://portal.example/", name="renamed")
    result = network_load()
    assert (result.created, result.updated) == (0, 2)
    lsc_1m = Facility.objects.get(code="lsc-1m0-a")
    assert Site.objects.get(code="lsc").clear_fraction == 0.8
    assert lsc_1m.name == "LCO 1-m, dome A, Cerro Tololo"
    assert (lsc_1m.enabled, lsc_1m.api_url) == (False, "https://portal.example/")
    assert lsc_1m.portal_base_url == "https://portal.example/"
    settings.BATON_BASE_URL = "http://baton.example:8001"
    assert Facility.objects.get(code="lsc-1m0-b").portal_base_url == "http://baton.example:8001/sim/"


def test_a_facility_with_an_unusable_adapter_fails_the_system_check() -> None:
    from django.core.checks import Tags

    assert [e.id for e in run_checks(tags=[Tags.database], databases=["default"]) if (e.id or "").startswith("observatories")] == []
    Facility.objects.filter(code="lsc-1m0-a").update(adapter="observatories.nothing.Here")
    Facility.objects.filter(code="lsc-1m0-b").update(adapter="observatories.models.Site")
    errors = [e for e in run_checks(tags=[Tags.database], databases=["default"]) if (e.id or "").startswith("observatories")]
    assert [e.id for e in errors] == ["observatories.E002", "observatories.E002"]
    assert "lsc-1m0-a: adapter 'observatories.nothing.Here' cannot be imported" in errors[0].msg
    assert "is not a TOM BaseRoboticObservationFacility" in errors[1].msg


def test_demo_load_reports_the_network(capsys) -> None:
    import io

    from observatories import demo

    out = io.StringIO()
    demo.load(stdout=out)
    assert out.getvalue() == f"  default network: 11 sites, {Facility.objects.count()} facilities, {Instrument.objects.count()} instruments (0 created, 0 updated)\n"
