"""TOM's own paths that ignore permissions are behind the door: template tags, the ReducedDatum API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from rest_framework.test import APIClient
from tom_dataproducts.models import PhotometryReducedDatum

from policies import clock
from policies.models import DataOwnership
from policies.services import data_record_ownership, policy_update, target_record_interest

from .conftest import T0, document, make_photometry, make_target, rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared(world):
    """A target both teams follow; A's point is private, B's is shared with the network."""
    policy_update(team=world.b, by=world.carol, now=T0, document=document(photometry=rule((), 0, "network")))
    target = make_target("AT tags")
    for team in (world.a, world.b):
        target_record_interest(target=target, team=team.group, since=T0, now=T0)
    mine = make_photometry(target, T0, 15.4321)
    theirs = make_photometry(target, T0 + timedelta(hours=1), 16.8765)
    data_record_ownership(data=mine, team=world.a.group, kind="photometry", now=T0)
    data_record_ownership(data=theirs, team=world.b.group, kind="photometry", now=T0)
    return target, mine, theirs


def render(template: str, user, target) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load dataproduct_extras %}" + template).render(Context({"request": request, "target": target}))


def test_recent_photometry_shows_only_what_the_viewer_may_see(world, shared):
    target, _, _ = shared
    assert "15.4321" in render("{% recent_photometry target limit=5 %}", world.bob, target)
    for_dave = render("{% recent_photometry target limit=5 %}", world.dave, target)
    assert "16.8765" in for_dave and "15.4321" not in for_dave


def test_the_sparkline_sees_only_visible_points(world, shared):
    target, mine, theirs = shared
    PhotometryReducedDatum.objects.filter(pk__in=[mine.pk, theirs.pk]).update(timestamp=clock.now() - timedelta(days=2))
    target_record_interest(target=target, team=world.a.group)  # (already followed: no change)
    from policies.services import policy_update as update

    update(team=world.a, by=world.alice, document=document(requests=rule((), 0, "public")))
    # Olga may see the target but none of its points, so there is nothing to draw. (With points to
    # draw, TOM 3.1's own sparkline code fails on Django 5: it uses the removed timezone.utc.)
    assert "img" not in render("{% reduceddatum_sparkline target 30 %}", world.olga, target)


def test_reduceddatum_api_reads_creates_and_deletes_through_the_door(world, shared):
    target, mine, theirs = shared
    client = APIClient()
    client.force_authenticate(world.dave)
    listed = client.get(f"/api/reduceddatums/?target__id={target.pk}").json()["results"]
    assert [row["value"]["brightness"] for row in listed] == [16.8765]
    assert client.delete(f"/api/reduceddatums/{mine.pk}/").status_code == 404  # not visible: as if absent
    assert client.delete(f"/api/reduceddatums/{theirs.pk}/").status_code == 204  # his own team's
    assert not DataOwnership.objects.filter(object_id=theirs.pk).exists()  # forgotten with the datum
    client.force_authenticate(world.olga)
    hidden = make_target("AT nobody's")
    target_record_interest(target=hidden, team=world.a.group, since=T0, now=T0)
    body = {"target": hidden.pk, "data_type": "photometry", "timestamp": T0.isoformat(), "value": {"magnitude": 12.0, "filter": "r"}}
    assert client.post("/api/reduceddatums/", body, format="json").status_code in (400, 403)
    client.force_authenticate(world.bob)
    assert client.delete(f"/api/reduceddatums/{mine.pk}/").status_code == 204
    assert client.delete("/api/reduceddatums/abc/").status_code == 404
