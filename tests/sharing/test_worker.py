"""End to end with a real Celery worker and real HTTP: released data reaches a partner TOM and Hermes,
proprietary data does not until its period ends, and an endpoint that was down gets each item once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from policies import clock
from policies.services import data_record_ownership, data_release_due
from sharing.models import OutboxItem
from sharing.services import outbox_due
from tests.sharing.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def statuses() -> list[tuple[str, int, str]]:
    return sorted(OutboxItem.objects.values_list("destination__name", "object_id", "status"))


def test_released_data_reaches_the_partner_tom_and_hermes_and_proprietary_data_waits_for_its_period(
        celery_worker_process: Any, world: Any, destinations: Any, partner: Any) -> None:
    world.share(days=30, destinations=["partner-tom", "hermes"])
    old = world.point(age_days=40, mag=17.25)  # its 30 days are over: released at once
    new = world.point(age_days=10, mag=16.5, band="i")  # proprietary for 20 more days
    data_record_ownership(data=[old, new], team=world.team.group, kind="photometry", backfill=True)

    wait_for(lambda: statuses() == [("hermes", old.pk, "sent"), ("partner-tom", old.pk, "sent")],
             what="the worker to push the released point")
    assert [t["name"] for t in partner.targets] == ["OGLE-2016-BLG-1195"]
    assert [(d["data_type"], d["value"]["brightness"], d["value"]["bandpass"], d["target"]) for d in partner.data] == [
        ("photometry", 17.25, "r", "1")]
    assert partner.data[0]["source_location"].endswith(  # this Baton's address for it, naming model and id
        f"/api/reduceddatums/{old.pk}/?model=tom_dataproducts.photometryreduceddatum")
    [message] = partner.messages
    assert message["topic"] == "hermes.test" and message["authors"] == "A. Lice, B. Ob"
    assert message["data"]["targets"][0]["name"] == "OGLE-2016-BLG-1195"
    assert [(r["brightness"], r["bandpass"], r["brightness_unit"]) for r in message["data"]["photometry"]] == [(17.25, "r", "AB mag")]
    assert not OutboxItem.objects.filter(object_id=new.pk).exists()  # proprietary: not even queued

    # The beat's release run, 25 days on: the second point's period is over, so it goes too.
    with clock.moved(by=timedelta(days=25)):
        released = data_release_due()
    assert released == {"bulge": {"photometry": 1, "targets": 0}}
    expected = sorted([("hermes", new.pk, "sent"), ("hermes", old.pk, "sent"),
                       ("partner-tom", new.pk, "sent"), ("partner-tom", old.pk, "sent")])
    wait_for(lambda: statuses() == expected, what="the worker to push the point released later")
    assert sorted(d["value"]["brightness"] for d in partner.data) == [16.5, 17.25]
    assert len(partner.targets) == 1  # the partner's target was found again, not made twice
    assert sorted(m["data"]["photometry"][0]["brightness"] for m in partner.messages) == [16.5, 17.25]
    assert partner.refused == []


def test_an_endpoint_that_is_down_then_back_gets_each_item_exactly_once(
        celery_worker_process: Any, world: Any, destinations: Any, partner: Any) -> None:
    world.share(days=0, destinations=["partner-tom", "hermes"])
    partner.stop()
    points = [world.point(age_days=1, mag=15.0 + i / 10) for i in range(3)]
    data_record_ownership(data=points, team=world.team.group, kind="photometry")
    wait_for(lambda: {s for _, _, s in statuses()} == {"retrying"} and len(statuses()) == 6,
             what="the worker's failed attempts")
    assert {e.split(":")[0] for e in OutboxItem.objects.values_list("last_error", flat=True)} == {
        "partner-tom is unreachable", "hermes is unreachable"}

    # Back, but the first answer of the TOM is lost on its way: the retry finds the datum there already.
    partner.start()
    partner.lose_answers = 1
    assert outbox_due(now=timezone.now() + timedelta(minutes=5))["retries"] == 6
    wait_for(lambda: OutboxItem.objects.filter(status="sent").count() == 5
             and OutboxItem.objects.filter(status="retrying", attempts=2).count() == 1, what="the re-driven items")
    assert len(partner.data) == 3  # the lost answer's datum did land
    # One release goes to Hermes as one message, unless a task of the outage was still under way (then a
    # row it held goes on its own): either way each point is published once.
    assert sum(len(m["data"]["photometry"]) for m in partner.messages) == 3
    assert outbox_due(now=timezone.now() + timedelta(hours=1))["retries"] == 1  # the one whose answer was lost
    wait_for(lambda: {s for _, _, s in statuses()} == {"sent"}, what="the last item")

    sent = sorted(d["source_location"].split("/")[-2] for d in partner.data)
    assert sent == sorted(str(p.pk) for p in points)  # each once
    assert sorted(i["source_location"].split("/")[-2] for m in partner.messages for i in m["data"]["extra_data"]["items"]) == sent
    assert len(partner.targets) == 1
