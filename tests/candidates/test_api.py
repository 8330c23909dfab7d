"""The push API over real HTTP: real packets in, targets out (through a real Celery worker);
malformed input refused with a clear error; a lost Celery message recovered by the reconciler."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from candidates.models import (
    AlertBatch,
    BatchStatus,
    Candidate,
    FiringStatus,
    LightCurvePoint,
    Match,
    TriggerFiring,
)
from candidates.services import batch_process, batches_reconcile, filter_create
from candidates.services.batches import envelope_count
from policies.services import team_create

from .conftest import AVRO, JSON, generic_alert, json_body, rubin_sample, ztf_packet


@pytest.fixture
def pusher(db: Any, django_user_model: Any) -> Any:
    """An account allowed to push alerts for any broker (alerts carry the survey's or their own broker name)."""
    account = django_user_model.objects.create_user(username="pusher", password="pusher pass phrase 1")
    account.user_permissions.add(Permission.objects.get(codename="add_alertbatch"))
    account.token = Token.objects.get_or_create(user=account)[0].key
    return account


def push(base: str, token: str | None, body: bytes, content_type: str) -> requests.Response:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Token {token}"
    return requests.post(f"{base}/api/candidates/batches/", data=body, headers=headers, timeout=30)


def wait_done(url: str, token: str, deadline: float = 60.0) -> dict[str, Any]:
    """Poll a batch's status until the worker (another process) has finished it."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        status = requests.get(url, headers={"Authorization": f"Token {token}"}, timeout=10).json()
        if status["status"] in (BatchStatus.DONE, BatchStatus.FAILED):
            return status
        time.sleep(0.1)
    raise AssertionError(f"batch {url} not processed within {deadline} s")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_rubin_and_ztf_packets_through_the_endpoint_become_targets(
    live_server: Any, celery_worker_process: Any, pusher: Any, django_user_model: Any
) -> None:
    # A Baton team (its policy allows telescope time), so fired rules become observing requests.
    from policies.services import team_create

    team = team_create(name="transients", admins=[django_user_model.objects.create_user(username="pi", password="x" * 20)]).group
    filter_create(name="everything", team=team, predicates=[])
    from candidates.models import TriggerRule

    TriggerRule.objects.create(team=team, name="follow all", filter=team.stream_filters.get())

    rubin = push(live_server.url, pusher.token, rubin_sample(11, 1), AVRO)
    ztf = push(live_server.url, pusher.token, ztf_packet(), "avro/binary")
    for response in (rubin, ztf):
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 1 and response.json()["status"] == "received"
        assert response.headers["Location"] == response.json()["status_url"]
    rubin_status = wait_done(rubin.json()["status_url"], pusher.token)
    ztf_status = wait_done(ztf.json()["status_url"], pusher.token)
    for status in (rubin_status, ztf_status):
        assert (status["n_stored"], status["n_rejected"], status["n_new_targets"], status["n_matches"]) == (1, 0, 1, 1)
        assert status["alert_errors"] == []

    rubin_target = Target.objects.get(name="rubin:281323062375219201")
    assert (rubin_target.ra, rubin_target.dec) == (351.570546978, 0.126243049656)
    assert LightCurvePoint.objects.filter(target=rubin_target).count() == 3
    ztf_target = Target.objects.get(name="ZTF23aaqzsni")
    assert (ztf_target.ra, ztf_target.dec) == (268.4541812, -29.9063871)
    assert PhotometryReducedDatum.objects.filter(target=ztf_target).count() == 2
    ztf_candidate = Candidate.objects.get(target=ztf_target)
    assert [(c["classifier"], c["version"]) for c in ztf_candidate.classifications] == [
        ("ztf-rb", "t17_f5_c3"), ("ztf-drb", "d6_m7")
    ]
    assert Match.objects.count() == 2
    # The rule fired once per target, and the worker turned each firing into an observing request
    # through the scheduler's factory (the default BATON_TRIGGER_REQUEST_FACTORY).
    end = time.monotonic() + 30
    while TriggerFiring.objects.exclude(status=FiringStatus.REQUESTED).exists() and time.monotonic() < end:
        time.sleep(0.1)
    assert sorted(TriggerFiring.objects.values_list("target__name", "status")) == [
        ("ZTF23aaqzsni", "requested"), ("rubin:281323062375219201", "requested")
    ]
    from observatories.scheduling.models import ObservingRequest

    requests = ObservingRequest.objects.filter(source__startswith="trigger:")
    assert sorted(requests.values_list("target__name", flat=True)) == ["ZTF23aaqzsni", "rubin:281323062375219201"]

    # The same packet again: accepted, stored nothing.
    again = push(live_server.url, pusher.token, ztf_packet(), AVRO)
    status = wait_done(again.json()["status_url"], pusher.token)
    assert (status["n_stored"], status["n_duplicate"], status["n_matches"]) == (0, 1, 0)
    assert Candidate.objects.count() == 2 and TriggerFiring.objects.count() == 2


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_message_was_lost_is_recovered_by_the_reconciler(
    celery_worker_process: Any, pusher: Any
) -> None:
    # As if Redis lost the message: the batch row exists, no task was ever sent.
    batch = AlertBatch.objects.create(content_type=JSON, body=json_body(generic_alert()), broker="b", n_received=1,
                                      sender=pusher)
    assert batches_reconcile(now=batch.received_at + timedelta(seconds=30)) == []  # not stale yet
    assert batches_reconcile(now=batch.received_at + timedelta(minutes=3)) == [str(batch.pk)]
    end = time.monotonic() + 60
    while AlertBatch.objects.get(pk=batch.pk).status != BatchStatus.DONE and time.monotonic() < end:
        time.sleep(0.1)
    batch.refresh_from_db()
    assert (batch.status, batch.n_stored, bytes(batch.body)) == (BatchStatus.DONE, 1, b"")


@pytest.mark.django_db(transaction=True)
def test_malformed_bodies_are_refused_over_http(live_server: Any, pusher: Any, user: Any) -> None:
    base = live_server.url
    cases = [
        (b"Obj\x01garbage", AVRO, 400, "cannot read the Avro container header"),
        (ztf_packet()[:-40], AVRO, 400, "truncated Avro container"),
        (b"\x17nope", AVRO, 400, "neither an Avro object container file"),
        (b"{not json", JSON, 400, "body is not JSON"),
        (json.dumps([generic_alert()]).encode(), JSON, 400, 'body must be a JSON object {"alerts": [...]}'),
        (json_body(), JSON, 400, "the batch holds no alert"),
        (b"", JSON, 400, "body is empty"),
        (b"alert", "text/plain", 415, "unsupported content type 'text/plain'"),
    ]
    for body, content_type, code, message in cases:
        response = push(base, pusher.token, body, content_type)
        assert response.status_code == code, (message, response.text)
        assert message in response.json()["detail"], response.json()
    assert AlertBatch.objects.count() == 0

    assert push(base, None, json_body(generic_alert()), JSON).status_code == 401
    outsider = Token.objects.get_or_create(user=user)[0].key
    forbidden = push(base, outsider, json_body(generic_alert()), JSON)
    assert forbidden.status_code == 403 and "not a registered broker" in forbidden.json()["detail"]


def test_a_100_mb_body_is_refused_before_it_is_read(pusher: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {pusher.token}")
    response = client.post("/api/candidates/batches/", data=b"x" * (100 * 1024 * 1024), content_type=AVRO)
    assert response.status_code == 413
    assert response.json()["detail"] == "body is 104857600 bytes; the limit is 67108864 bytes (64 MiB)"
    assert AlertBatch.objects.count() == 0


def test_bad_alerts_in_a_batch_are_reported_and_the_good_ones_kept(pusher: Any, broker_account: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {broker_account.token}")
    missing = generic_alert(alert_id="bad-1")
    del missing["ra"]
    body = json_body(
        generic_alert(alert_id="good-1"),
        missing,
        generic_alert(alert_id="bad-2", dec=91.0),
        generic_alert(alert_id="bad-3", mag=float("nan")),
        generic_alert(alert_id="bad-4", ra=-1.0),
        generic_alert(alert_id="good-2", object_id="OBJ-2", ra=151.0, time="2026-06-02T00:00:00Z"),
        generic_alert(alert_id="bad-5", broker="someone-else"),
    )
    response = client.post("/api/candidates/batches/", data=body, content_type=JSON)
    assert response.status_code == 202 and response.json()["accepted"] == 7
    batch = batch_process(batch_id=response.json()["id"])
    assert batch is not None
    status = client.get(f"/api/candidates/batches/{batch.pk}/").json()
    assert (status["status"], status["n_stored"], status["n_rejected"]) == ("done", 2, 5)
    assert [(e["index"], e["alert_id"], e["field"]) for e in status["alert_errors"]] == [
        (1, "bad-1", "ra"), (2, "bad-2", "dec"), (3, "bad-3", "mag"), (4, "bad-4", "ra"), (6, "bad-5", "broker"),
    ]
    assert all(e["message"].startswith(e["field"] + ":") for e in status["alert_errors"])
    assert sorted(Candidate.objects.values_list("alert_id", "broker")) == [
        ("good-1", "ztf-broker"), ("good-2", "ztf-broker")
    ]
    # Only the sender (or staff) may read a batch.
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {pusher.token}")
    assert other.get(f"/api/candidates/batches/{batch.pk}/").status_code == 404


def test_envelope_count_of_avro_containers_without_decoding() -> None:
    from .conftest import rubin_container, rubin_record

    _, record = rubin_record()
    records = []
    for i in range(250):
        copy = dict(record)
        copy["diaSource"] = dict(record["diaSource"], diaSourceId=i)
        records.append(copy)
    assert envelope_count(body=rubin_container(records), content_type=AVRO) == 250
    assert envelope_count(body=ztf_packet(), content_type=AVRO) == 1


def test_filters_and_regions_api(api_client: Any, user: Any) -> None:
    team = team_create(name="kilonova hunters", admins=[user]).group  # a Baton team: a plain group owns nothing
    created = api_client.post("/api/candidates/filters/", {
        "name": "bright", "team": team.pk, "predicates": [{"field": "mag", "op": "<", "value": 19}],
    }, format="json")  # fmt: skip
    assert created.status_code == 201 and created.json()["version"] == 1
    pk = created.json()["id"]
    patched = api_client.patch(f"/api/candidates/filters/{pk}/", {
        "predicates": [{"field": "mag", "op": "<", "value": 20}]}, format="json")  # fmt: skip
    assert patched.status_code == 200 and patched.json()["version"] == 2
    bad = api_client.post("/api/candidates/filters/", {"name": "x", "predicates": [{"field": "colour"}]},
                          format="json")
    assert bad.status_code == 400 and "predicates[0].field" in bad.json()["detail"]
    stranger = Group.objects.create(name="not mine")
    assert api_client.post("/api/candidates/filters/", {"name": "x", "team": stranger.pk, "predicates": []},
                           format="json").status_code == 400

    region = api_client.post("/api/candidates/regions/", {
        "name": "GW skymap", "kind": "moc", "spec": {"moc": {"5": [100, 101, 102]}}}, format="json")  # fmt: skip
    assert region.status_code == 201 and region.json()["owner"] == user.pk and region.json()["area"] > 0
    bad_region = api_client.post("/api/candidates/regions/", {
        "name": "c", "kind": "cone", "spec": {"ra": 10, "dec": 95, "radius": 1}}, format="json")  # fmt: skip
    assert bad_region.status_code == 400 and bad_region.json()["detail"] == "dec: 95 is outside [-90.0, 90.0]"
    assert [f["name"] for f in api_client.get("/api/candidates/filters/").json()["results"]] == ["bright"]
    assert api_client.get(f"/api/candidates/filters/{pk + 1000}/").status_code == 404
