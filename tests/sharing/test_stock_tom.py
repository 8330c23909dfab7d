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
