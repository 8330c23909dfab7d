"""Only Baton teams own filters and regions, and ingest's grants follow the door (issue 20, item 3): a user in no
team cannot make an alert expose a team's private target, through TOM's "Public" group or a region of their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from guardian.models import GroupObjectPermission, UserObjectPermission
from rest_framework.test import APIClient
from tom_targets.models import Target

from candidates.models import Match, WatchRegion
from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create, region_create
from policies.access import target_visible_to
from policies.selectors import audience_group
from policies.services import target_record_interest, team_create

from .conftest import JSON, generic_alert, json_body

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
CONE = {"ra": 150.0, "dec": 2.0, "radius": 0.1}


def ingest(*alerts: dict[str, Any]) -> Any:
    parsed = parse_alert_batch(body=json_body(*alerts), content_type=JSON, broker="b")
    assert parsed.errors == []
    return alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW)


@pytest.fixture
def scene(django_user_model: Any) -> Any:
    """Team Bulge follows a private target at the alert's position; Olga is in no team, only TOM's "Public"."""

    def make(name: str) -> Any:
        return django_user_model.objects.create_user(username=name, password="a long test password 42",
                                                     email=f"{name}@example.org")

    class Scene:
        admin, olga = make("pi"), make("olga")
        team = team_create(name="Bulge team", slug="bulge", admins=[admin], now=NOW - timedelta(days=30))
        public = audience_group(audience="public")
        target = Target.objects.create(name="OGLE-2026-BLG-0001 (private)", type=Target.SIDEREAL, ra=150.0, dec=2.0,
                                       epoch=2000.0, permissions=Target.Permissions.PRIVATE)

    Scene.public.user_set.add(Scene.olga)
    target_record_interest(target=Scene.target, team=Scene.team.group, since=NOW - timedelta(days=1))
    return Scene


def viewers(target: Target) -> set[int]:
    ct = ContentType.objects.get_for_model(Target)
    return set(GroupObjectPermission.objects.filter(content_type=ct, object_pk=str(target.pk),
                                                    permission__codename="view_target").values_list("group_id", flat=True))


def test_a_user_in_no_team_cannot_own_a_region_or_filter_as_a_group(scene: Any) -> None:
    client = APIClient()
    client.force_authenticate(scene.olga)
    region = client.post("/api/candidates/regions/", {"name": "mine", "kind": "cone", "spec": CONE,
                                                      "team": scene.public.pk}, format="json")
    assert region.status_code == 400 and "team" in region.json()
    stream_filter = client.post("/api/candidates/filters/", {"name": "all", "team": scene.public.pk,
                                                             "predicates": [{"field": "mag", "op": "<", "value": 30}]},
                                format="json")
    assert stream_filter.status_code == 400
    assert not WatchRegion.objects.filter(team=scene.public).exists()
    page = APIClient()
    page.force_login(scene.olga)
    assert "Public" not in page.get("/candidates/").content.decode()  # no team to choose


def test_an_alert_at_a_private_target_exposes_it_to_nobody(scene: Any) -> None:
    # A region and a filter owned by "Public", as the API let any user make them before, and Olga's own region.
    region_create(name="public cone", kind="cone", spec=CONE, team=scene.public)
    filter_create(name="public all", team=scene.public, predicates=[{"field": "mag", "op": "<", "value": 30}])
    region_create(name="olga's cone", kind="cone", spec=CONE, owner=scene.olga)
    before = viewers(scene.target)

    result = ingest(generic_alert())
    assert result.stored == 1 and result.new_targets == 0  # matched to the private target
    assert viewers(scene.target) == before and scene.public.pk not in before
    assert not UserObjectPermission.objects.filter(user=scene.olga, object_pk=str(scene.target.pk)).exists()
    assert not Match.objects.filter(team=scene.public).exists()
    assert Match.objects.filter(owner=scene.olga, target=scene.target).count() == 1  # her region did match
    assert not target_visible_to(user=scene.olga, target=scene.target, audit=False)
    client = APIClient()
    client.force_login(scene.olga)
    page = client.get(f"/targets/{scene.target.pk}/")
    assert page.status_code in (302, 403, 404) and "OGLE-2026-BLG-0001" not in page.content.decode()
    assert "OGLE-2026-BLG-0001" not in client.get("/targets/").content.decode()
    assert "OGLE-2026-BLG-0001" not in client.get("/candidates/").content.decode()  # her match is not shown
    assert client.get("/api/candidates/matches/").json()["count"] == 0


def test_the_teams_own_region_still_shows_it_the_target(scene: Any) -> None:
    other = Target.objects.create(name="AT new", type=Target.SIDEREAL, ra=40.0, dec=-10.0, epoch=2000.0,
                                  permissions=Target.Permissions.PRIVATE)
    region_create(name="team cone", kind="cone", spec={"ra": 40.0, "dec": -10.0, "radius": 0.1}, team=scene.team.group)
    region_create(name="olga's cone", kind="cone", spec={"ra": 40.0, "dec": -10.0, "radius": 0.1}, owner=scene.olga)
    ingest(generic_alert(ra=40.0, dec=-10.0))
    assert viewers(other) == {scene.team.group_id}
    assert target_visible_to(user=scene.admin, target=other, audit=False)
    assert not target_visible_to(user=scene.olga, target=other, audit=False)  # the team follows it now


def test_a_users_own_region_shows_them_a_target_no_team_follows(scene: Any) -> None:
    region_create(name="olga's cone", kind="cone", spec={"ra": 300.0, "dec": 20.0, "radius": 0.1}, owner=scene.olga)
    result = ingest(generic_alert(ra=300.0, dec=20.0))
    assert result.new_targets == 1
    made = Match.objects.get(owner=scene.olga).target
    assert target_visible_to(user=scene.olga, target=made, audit=False)
    client = APIClient()
    client.force_login(scene.olga)
    assert [m["target"] for m in client.get("/api/candidates/matches/").json()["results"]] == [made.pk]
