"""Sharing out into a real, stock TOM Toolkit 3.1 server (``stock_tom.py``), with two Celery workers
sending at once: the first data of a new target arrive exactly once, with their source and unit, and a
proprietary point waits for its period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tom_targets.models import TargetName

from policies import clock
from policies.services import data_record_ownership, data_release_due
from sharing.models import OutboxItem, RemoteTarget
from sharing.services import destination_create
from tests.sharing.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def settled(count: int) -> list[tuple[str, str]]:
    """Wait until ``count`` rows are sent or failed; their (status, last error)."""
    wait_for(lambda: OutboxItem.objects.filter(status__in=["sent", "failed"]).count() == count, timeout=60,
             what=f"{count} outbox rows to be sent or fail")
    return sorted(OutboxItem.objects.values_list("status", "last_error"))


@pytest.fixture
def partner_tom(world: Any, stock_tom: Any) -> Any:
    return destination_create(team=world.team, by=world.alice, data={
        "name": "partner-tom", "kind": "tom", "base_url": stock_tom.url, "token": stock_tom.token})


def test_the_first_data_of_a_new_target_reach_a_stock_tom_exactly_once_from_two_workers_at_once(
        two_workers: None, world: Any, partner_tom: Any, stock_tom: Any) -> None:
    TargetName.objects.create(target=world.target, name="KMT-2016-BLG-0212")  # an alias: TOM's fuzzy search is per name
    world.share(days=30, destinations=["partner-tom"])
    released = [world.point(age_days=40 + i / 24, mag=17.0 + i / 100) for i in range(8)]  # their 30 days are over
    proprietary = world.point(age_days=10, mag=16.5, band="i")  # 20 more days
    data_record_ownership(data=[*released, proprietary], team=world.team.group, kind="photometry", backfill=True)

    # All eight are queued in one commit, so both workers start on the same new target at once.
    assert settled(8) == [("sent", "")] * 8  # before the per-target lock: 1 or 2 "failed", the partner's 400
    assert stock_tom.targets() == ["OGLE-2016-BLG-1195"]  # made once, not refused to the second worker
    rows = stock_tom.photometry()
    assert sorted(r[1] for r in rows) == sorted(p.brightness for p in released)  # each point once
    assert {r[0] for r in rows} == {"OGLE-2016-BLG-1195"}
    assert {(r[2], r[3], r[4], r[5], r[6]) for r in rows} == {("r", "AB", "1m0-05", "sinistro", "Baton")}
    assert sorted(r[7] for r in rows) == sorted(
        f"http://127.0.0.1:8000/api/reduceddatums/{p.pk}/?model=tom_dataproducts.photometryreduceddatum"
        for p in released)  # names model and id here
    assert not OutboxItem.objects.filter(object_id=proprietary.pk).exists()

    # The partner's id is forgotten (a new destination row would do the same): found again by name, not made twice.
    RemoteTarget.objects.all().delete()
    with clock.moved(by=timedelta(days=25)):
        assert data_release_due() == {"bulge": {"photometry": 1, "targets": 0}}
    assert settled(9) == [("sent", "")] * 9
    assert stock_tom.targets() == ["OGLE-2016-BLG-1195"]
    assert sorted(r[1] for r in stock_tom.photometry()) == sorted([16.5, *(p.brightness for p in released)])


def test_a_target_made_at_the_partner_between_search_and_create_is_found_again(
        world: Any, partner_tom: Any, stock_tom: Any) -> None:
    import requests

    from sharing.clients import TomDestinationClient

    client = TomDestinationClient(partner_tom)
    assert client.find_remote(world.target) is None
    # Someone at the partner makes it now (after Baton's search): Baton's create gets TOM's 400, then finds it.
    made = requests.post(stock_tom.url + "api/targets/", headers={"Authorization": f"Token {stock_tom.token}"}, timeout=10,
                         json={"name": "OGLE-2016-BLG-1195", "type": "SIDEREAL", "ra": 268.56, "dec": -29.95})
    assert made.status_code == 201
    assert client.create_remote(world.target) == str(made.json()["id"])
    assert stock_tom.targets() == ["OGLE-2016-BLG-1195"]


def test_a_stock_tom_shares_into_baton_with_its_own_code_and_basic_auth(
        live_server: Any, world: Any, stock_tom: Any, django_user_model: Any, settings: Any) -> None:
    from base64 import b64encode

    import requests
    from django.test import RequestFactory
    from guardian.shortcuts import assign_perm
    from tom_dataproducts.models import PhotometryReducedDatum

    from policies.access import datum_visible_to
    from policies.services import team_create, team_member_set
    from sharing.incoming import PartnerBasicAuthentication, incoming_datum_record
    from tests.sharing.conftest import PASSWORD

    # The partner TOM's account here: a member of the team that receives its data, allowed to see the target and
    # (TOM's rule for adding data to a target through its API) to change it.
    account = django_user_model.objects.create_user(username="partner_tom", password=PASSWORD)
    team_member_set(team=world.team, user=account, role="member", by=world.alice)
    assign_perm("tom_targets.view_target", account, world.target)
    assign_perm("tom_targets.change_target", account, world.target)
    carol = django_user_model.objects.create_user(username="carol_s", password=PASSWORD)
    team_create(name="Other team", slug="other", admins=[carol])
    world.share(days=30, destinations=[])

    message = stock_tom.share_into(
        url=live_server.url, username="partner_tom", password=PASSWORD,
        target={"name": world.target.name, "type": "SIDEREAL", "ra": 268.56, "dec": -29.95},
        points=[{"timestamp": "2026-12-01T03:00:00+00:00", "bandpass": "r", "brightness": 16.1, "brightness_error": 0.03,
                 "unit": "AB mag", "telescope": "partner-1m", "instrument": "cam-1"}])
    assert message == "1 of 1 datums successfully saved."  # TOM's own words: basic auth was accepted
    [datum] = PhotometryReducedDatum.objects.filter(target=world.target)
    assert (datum.brightness, datum.unit, datum.telescope, datum.source_name) == (16.1, "AB mag", "partner-1m", "partnertom")
    assert datum.source_location.startswith("ReducedDatum shared from")

    # Owned by the partner account's team as it arrives (TOM's upload API records it): its members see it, another
    # team does not (30 proprietary days).
    from django.contrib.contenttypes.models import ContentType

    from policies.models import DataOwnership

    owned = DataOwnership.objects.filter(content_type=ContentType.objects.get_for_model(datum), object_id=datum.pk)
    assert list(owned.values_list("team_id", "kind")) == [(world.team.group_id, "photometry")]
    assert datum_visible_to(user=world.bob, datum=datum, audit=False)
    incoming_datum_record(datum=datum, user=account)  # recording again changes nothing
    assert owned.count() == 1
    assert not datum_visible_to(user=carol, datum=datum, audit=False)

    # Basic auth opens only the two sharing-in paths, and not over plain HTTP where the site redirects to HTTPS.
    basic = "Basic " + b64encode(f"partner_tom:{PASSWORD}".encode()).decode()
    assert requests.get(f"{live_server.url}/api/teams/", headers={"Authorization": basic}, timeout=10).status_code in (401, 403)
    assert requests.get(f"{live_server.url}/api/targets/", headers={"Authorization": basic}, timeout=10).status_code == 200
    request = RequestFactory().get("/api/targets/", HTTP_AUTHORIZATION=basic)
    settings.SECURE_SSL_REDIRECT = True
    assert PartnerBasicAuthentication().authenticate(request) is None
    assert PartnerBasicAuthentication().authenticate(RequestFactory().get("/api/targets/", secure=True, HTTP_AUTHORIZATION=basic))[0] == account
