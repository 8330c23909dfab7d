"""Hermes as it validates: the stand-in refuses what Hermes refuses, Baton's messages for an observation, a
broker point, a spectrum and a non-sidereal target pass it (one message per observation), units are mapped to
Hermes' choices with the recorded unit and source kept, and Hermes' 200-with-error is a visible failure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone
from tom_dataproducts.models import DataProduct, PhotometryReducedDatum, SpectroscopyReducedDatum
from tom_observations.models import ObservationRecord
from tom_targets.models import Target

from policies.services import data_record_ownership
from sharing.models import OutboxItem
from sharing.services import outbox_item_deliver
from tests.sharing.conftest import HERMES_TOKEN
from tests.sharing.hermes_standin import NO_CREDENTIAL, hermes_errors

pytestmark = pytest.mark.django_db

VALID: dict[str, Any] = {"topic": "hermes.test", "title": "t", "submitter": "s", "data": {
    "targets": [{"name": "T1", "ra": 10.0, "dec": -20.0}],
    "photometry": [{"target_name": "T1", "date_obs": "2026-12-01T00:00:00+00:00", "telescope": "1m0-05",
                    "bandpass": "r", "brightness": 17.0, "brightness_unit": "AB mag"}]}}


def with_row(**changes: Any) -> dict[str, Any]:
    row = {k: v for k, v in {**VALID["data"]["photometry"][0], **changes}.items() if v is not None}
    return {**VALID, "data": {**VALID["data"], "photometry": [row]}}


def test_the_stand_in_refuses_what_hermes_refuses_over_http(partner: Any) -> None:
    post = lambda body: requests.post(partner.hermes_url + "api/v0/submit_message/", json=body, timeout=10,  # noqa: E731
                                      headers={"Authorization": f"Token {HERMES_TOKEN}"})
    no_scope = post(with_row(telescope=None))
    assert no_scope.status_code == 400
    assert no_scope.json() == {"data": {"photometry": [{
        "telescope": ["Must have at least one of telescope or instrument set"],
        "instrument": ["Must have at least one of telescope or instrument set"]}]}}
    bad_unit = post(with_row(brightness_unit="mag"))
    assert bad_unit.status_code == 400 and bad_unit.json() == {
        "data": {"photometry": [{"brightness_unit": ['"mag" is not a valid choice.']}]}}
    assert post(with_row(brightness=None)).status_code == 400  # a point or a limit is required
    assert post({**VALID, "topic": ""}).json() == {"topic": ["This field may not be blank."]}
    ok = post(VALID)
    assert ok.status_code == 200 and ok.json()["uuid"] and len(partner.messages) == 1
    partner.hermes_no_credential = True
    refused = post(VALID)
    assert refused.status_code == 200 and refused.json() == {"error": NO_CREDENTIAL}
    assert len(partner.messages) == 1  # nothing published


def test_the_stand_in_checks_targets_spectra_and_references() -> None:
    assert hermes_errors({**VALID, "data": {**VALID["data"], "targets": [{"name": "T1"}]}})["data"]["targets"] == [
        {"ra": ["ra/dec or orbital elements are required"], "dec": ["ra/dec or orbital elements are required"]}]
    assert hermes_errors(with_row(target_name="T2"))["data"]["photometry"] == [
        {"target_name": ["The target_name must reference a name in your target table"]}]
    spectrum = {"target_name": "T1", "date_obs": "2460000.5", "instrument": "FLOYDS", "flux": [1.0, 2.0],
                "wavelength": [500.0], "flux_units": "erg/s/cm2/A"}
    errors = hermes_errors({**VALID, "data": {**VALID["data"], "spectroscopy": [spectrum]}})
    assert errors == {"data": {"spectroscopy": [{"flux_units": ['"erg/s/cm2/A" is not a valid choice.']}]}}
    spectrum["flux_units"] = "mJy"
    assert hermes_errors({**VALID, "data": {**VALID["data"], "spectroscopy": [spectrum]}})["data"]["spectroscopy"] == [
        {"non_field_errors": ["Must have same number of datapoints for flux and wavelength"]}]
    assert hermes_errors(VALID) == {}


def deliver_all() -> set[str]:
    return {outbox_item_deliver(item_id=pk).status for pk in OutboxItem.objects.order_by("pk").values_list("pk", flat=True)}


def test_an_observation_goes_as_one_message_that_hermes_accepts_with_units_and_provenance(
        world: Any, destinations: Any, partner: Any) -> None:
    world.share(days=0, destinations=["hermes"])
    record = ObservationRecord.objects.create(target=world.target, facility="Baton", observation_id="obs-1",
                                              parameters={})
    points = []
    for i, (band, unit) in enumerate([("V", "Vega mag"), ("V", "Vega"), ("gp", "AB"), ("gp", "mag")]):
        product = DataProduct.objects.create(product_id=f"frame-{i}", target=world.target, observation_record=record)
        points.append(PhotometryReducedDatum.objects.create(
            target=world.target, data_product=product, timestamp=timezone.now() - timedelta(hours=2 - i / 10),
            bandpass=band, brightness=17.0 + i / 10, brightness_error=0.02, unit=unit, telescope="1m0-05",
            instrument="fa14", source_name="Baton/lco-1m0"))
    # Recorded one frame at a time, as the scheduler does: four releases, one observation.
    for point in points:
        data_record_ownership(data=[point], team=world.team.group, kind="photometry")
    assert deliver_all() == {"sent", "skipped"}
    assert partner.hermes_refused == []
    [message] = partner.messages  # one per observation, not one per datum
    assert set(OutboxItem.objects.values_list("status", flat=True)) == {"sent"}
    assert [(r["brightness_unit"], r["telescope"], r["instrument"]) for r in message["data"]["photometry"]] == [
        ("Vega mag", "1m0-05", "fa14"), ("Vega mag", "1m0-05", "fa14"), ("AB mag", "1m0-05", "fa14"),
        ("AB mag", "1m0-05", "fa14")]
    items = message["data"]["extra_data"]["items"]
    assert [(i["source_name"], i["unit"]) for i in items] == [
        ("Baton/lco-1m0", "Vega mag"), ("Baton/lco-1m0", "Vega"), ("Baton/lco-1m0", "AB"), ("Baton/lco-1m0", "mag")]
    assert message["data"]["photometry"][3]["comments"] == "source: Baton/lco-1m0; unit as recorded: mag"
    assert all(i["source_location"].endswith("?model=tom_dataproducts.photometryreduceddatum") for i in items)


def test_a_broker_point_a_spectrum_and_a_non_sidereal_target_pass_hermes(world: Any, destinations: Any,
                                                                          partner: Any) -> None:
    world.share(days=0, destinations=["hermes"])
    document = {"schema": 1, "sharing": {
        "photometry": {"partners": [], "proprietary_days": 0, "release_to": "network", "destinations": ["hermes"]},
        "spectra": {"partners": [], "proprietary_days": 0, "release_to": "network", "destinations": ["hermes"]}},
        "publication": {"guidelines": "", "claims_need_agreement": True},
        "time": {"overrun_action": "refuse", "unallocated_action": "allow", "allocations": []}, "notifications": []}
    from policies.services import policy_update

    policy_update(team=world.team, by=world.alice, document=document)
    broker = PhotometryReducedDatum.objects.create(
        target=world.target, timestamp=timezone.now() - timedelta(days=1), bandpass="ztfr", brightness=18.2,
        brightness_error=0.1, unit="AB mag", source_name="alerce", source_location="alerce:ZTF24abc")
    spectrum = SpectroscopyReducedDatum.objects.create(
        target=world.target, timestamp=timezone.now() - timedelta(days=1), flux=[1e-16, 2e-16], error=[1e-17, 1e-17],
        wavelength=[4000.0, 4010.0], flux_unit="erg/cm2/s/A", wavelength_unit="Angstrom", telescope="2m0-01",
        instrument="floyds")
    comet = Target.objects.create(name="C/2025 A1", type=Target.NON_SIDEREAL, scheme="MPC_COMET",
                                  epoch_of_elements=60800.0, inclination=120.5, lng_asc_node=33.0, arg_of_perihelion=200.0,
                                  eccentricity=0.99, perihdist=1.2, epoch_of_perihelion=60900.0)
    comet_point = PhotometryReducedDatum.objects.create(
        target=comet, timestamp=timezone.now() - timedelta(days=1), bandpass="r", limit=19.5, unit="AB",
        telescope="0m4-03", instrument="")
    data_record_ownership(data=[broker, comet_point], team=world.team.group, kind="photometry")
    data_record_ownership(data=[spectrum], team=world.team.group, kind="spectra")
    assert deliver_all() == {"sent"}
    assert partner.hermes_refused == []
    assert len(partner.messages) == 3  # the broker point, the comet's limit, the spectrum: three targets/releases
    by_title = {m["title"]: m["data"] for m in partner.messages}
    broker_row = by_title["Bulge team: photometry of OGLE-2016-BLG-1195"]["photometry"][0]
    assert (broker_row["telescope"], broker_row["comments"]) == ("alerce", "source: alerce; unit as recorded: AB mag")
    spectrum_row = by_title["Bulge team: spectroscopy of OGLE-2016-BLG-1195"]["spectroscopy"][0]
    assert (spectrum_row["flux_units"], spectrum_row["wavelength_units"], spectrum_row["flux_type"]) == (
        "erg / s / cm² / Å", "Å", "Fλ")
    comet_data = by_title["Bulge team: photometry of C/2025 A1"]
    assert comet_data["targets"][0]["orbital_elements"]["perihelion_distance"] == 1.2
    assert "ra" not in comet_data["targets"][0]
    assert comet_data["photometry"][0]["limiting_brightness_unit"] == "AB mag"


def test_a_datum_hermes_cannot_take_and_an_account_without_credential_fail_visibly(
        world: Any, destinations: Any, partner: Any) -> None:
    world.share(days=0, destinations=["hermes"])
    partner.hermes_no_credential = True
    data_record_ownership(data=[world.point(age_days=1, mag=15.0)], team=world.team.group, kind="photometry")
    assert deliver_all() == {"failed"}
    [item] = OutboxItem.objects.all()
    assert item.status == "failed" and "did not publish the message" in item.last_error
    assert NO_CREDENTIAL in item.last_error and item.sent_at is None
    # No telescope, instrument or source: Hermes would refuse it, so it is not sent and says why.
    bare = PhotometryReducedDatum.objects.create(target=world.target, timestamp=timezone.now() - timedelta(hours=1),
                                                 bandpass="r", brightness=15.5, unit="AB")
    data_record_ownership(data=[bare], team=world.team.group, kind="photometry")
    assert outbox_item_deliver(item_id=OutboxItem.objects.get(object_id=bare.pk).pk).status == "failed"
    assert "needs a telescope or an instrument" in OutboxItem.objects.get(object_id=bare.pk).last_error
