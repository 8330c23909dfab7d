"""Baton's network as a TOM facility: registered, and driven through TOM's own facility interface."""

from __future__ import annotations

import pytest
from tom_dataproducts.models import PhotometryReducedDatum
from tom_observations.facility import get_service_class, get_service_classes
from tom_observations.models import ObservationRecord
from tom_targets.models import Target

from observatories.adapters import PortalFacility
from observatories.forms import PortalObservationForm

from .conftest import BULGE, EVENING, NEXT_MORNING, WINDOW, Sim


def test_registered_with_tom(db) -> None:
    assert get_service_classes()["Baton"] is PortalFacility
    facility = get_service_class("Baton")()
    sites = facility.get_observing_sites()
    assert sites["Cerro Tololo Inter-American Observatory, Chile"] == {
        "sitecode": "lsc", "latitude": -30.167, "longitude": -70.805, "elevation": 2198,
    }


@pytest.mark.django_db(transaction=True)
def test_tom_form_submit_status_and_data_products(sim: Sim, user) -> None:
    sim.tick(EVENING)
    sim.weather("lsc", "clear")
    target = Target.objects.create(name=BULGE["name"], type=Target.SIDEREAL, ra=BULGE["ra"], dec=BULGE["dec"], epoch=2000.0)
    form = PortalObservationForm(
        data={
            "facility": "Baton", "target_id": target.pk, "instrument": "lsc-1m0-a-sinistro", "filter": "ip",
            "exposure_time": 30, "exposure_count": 3, "start": WINDOW[0].isoformat(), "end": WINDOW[1].isoformat(),
            "max_airmass": 2.0, "min_lunar_distance": 30, "ipp_value": 1.0, "idempotency_key": "tom-form-1",
        }
    )
    assert form.is_valid(), form.errors
    facility = PortalFacility()
    assert facility.validate_observation(form.observation_payload()) == []
    ids = facility.submit_observation(form.observation_payload())
    assert ids == facility.submit_observation(form.observation_payload())  # same form, same key: one request
    [observation_id] = ids
    assert observation_id.startswith("lsc-1m0-a:")
    record = ObservationRecord.objects.create(target=target, user=user, facility="Baton", parameters=form.serialize_parameters(), observation_id=observation_id)
    facility.update_observation_status(observation_id)
    record.refresh_from_db()
    assert record.status == "PENDING"
    assert record.scheduled_start is not None

    sim.tick(NEXT_MORNING)
    facility.update_observation_status(observation_id)
    record.refresh_from_db()
    assert record.status == "COMPLETED"
    assert record.terminal
    # The frames come from the facility's science archive: one TOM data product each, with its photometry.
    assert len(facility.data_products(observation_id)) == 3
    products = facility.save_data_products(record)
    assert len(products) == 3 and {p.data_product_type for p in products} == {"fits_file"}
    assert facility.save_data_products(record) == products  # idempotent
    data = PhotometryReducedDatum.objects.filter(target=target)
    assert data.count() == 3 and {d.data_product_id for d in data} == {p.pk for p in products}
    assert {d.bandpass for d in data} == {"ip"}
    assert all(0.005 < d.brightness_error < 0.2 for d in data)
    status = facility.get_facility_status()
    assert {site["code"] for site in status["sites"]} >= {"lsc", "coj"}
    assert facility.cancel_observation(observation_id) is False  # completed: nothing to cancel


def test_form_rejects_a_filter_the_instrument_lacks(db) -> None:
    target = Target.objects.create(name="t", type=Target.SIDEREAL, ra=1.0, dec=1.0, epoch=2000.0)
    form = PortalObservationForm(
        data={
            "facility": "Baton", "target_id": target.pk, "instrument": "lsc-0m4-a-qhy600", "filter": "U",
            "exposure_time": 30, "exposure_count": 1, "start": "2026-06-15T20:00", "end": "2026-06-15T19:00",
            "max_airmass": 2.0, "min_lunar_distance": 30, "ipp_value": 1.0, "idempotency_key": "k",
        }
    )
    assert not form.is_valid()
    assert form.errors["filter"] == ["lsc-0m4-a-qhy600 has the filters B, V, gp, rp, ip, zs, w"]
    assert form.errors["end"] == ["the window must end after it starts"]


@pytest.mark.django_db(transaction=True)
def test_observe_through_toms_own_pages(sim: Sim, client, django_user_model) -> None:
    from guardian.shortcuts import assign_perm

    from .conftest import POLARIS

    sim.tick(EVENING)
    observer = django_user_model.objects.create_user(username="obs", password="pw for obs 123")
    target = Target.objects.create(name=BULGE["name"], type=Target.SIDEREAL, ra=BULGE["ra"], dec=BULGE["dec"], epoch=2000.0)
    assign_perm("tom_targets.view_target", observer, target)
    assign_perm("tom_targets.change_target", observer, target)
    client.force_login(observer)
    page = client.get(f"/observations/Baton/create/?target_id={target.pk}&observation_type=IMAGING")
    assert page.status_code == 200
    assert "lsc-1m0-a-sinistro" in page.content.decode()
    form = {
        "facility": "Baton", "target_id": target.pk, "observation_type": "IMAGING", "instrument": "lsc-1m0-a-sinistro",
        "filter": "V", "exposure_time": 60, "exposure_count": 1, "start": WINDOW[0].isoformat(),
        "end": WINDOW[1].isoformat(), "max_airmass": 2.0, "min_lunar_distance": 30, "ipp_value": 1.0,
        "idempotency_key": "tom-page-1", "cadence_strategy": "",
    }
    response = client.post(f"/observations/Baton/create/?target_id={target.pk}", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    [record] = ObservationRecord.objects.filter(target=target)
    assert record.facility == "Baton"
    assert record.observation_id.startswith("lsc-1m0-a:")

    # A target that never rises at the site: the portal's own reason, on the form, and nothing submitted.
    polaris = Target.objects.create(name="Polaris", type=Target.SIDEREAL, ra=POLARIS["ra"], dec=POLARIS["dec"], epoch=2000.0)
    assign_perm("tom_targets.view_target", observer, polaris)
    assign_perm("tom_targets.change_target", observer, polaris)
    refused = client.post(
        f"/observations/Baton/create/?target_id={polaris.pk}", {**form, "target_id": polaris.pk, "idempotency_key": "tom-page-2"}
    )
    assert refused.status_code == 200
    assert "the target will not be visible within the time window" in refused.content.decode()
    assert ObservationRecord.objects.count() == 1
