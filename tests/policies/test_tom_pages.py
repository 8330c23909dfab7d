"""TOM's pages show another team nothing private (issue 20, item 6): a walk of TOM's pages as Team B's member
with Team A's real ids finds none of A's names or text, while A's own members still use them."""

from __future__ import annotations

from datetime import timedelta

import django_comments
import pytest
from django.contrib.sites.models import Site
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from guardian.shortcuts import assign_perm
from tom_dataproducts.models import DataProduct, DataProductGroup
from tom_observations.models import ObservationRecord
from tom_targets.models import Target, TargetList

from observatories.scheduling.models import ObservingRequest
from policies.services import data_record_ownership, target_record_interest

from .conftest import make_target

pytestmark = pytest.mark.django_db

SECRETS = ("AT 2026secretA", "Secret list A", "a secret comment of A", "secret_a_frame", "A's secret group")


@pytest.fixture
def team_a_world(world, settings, tmp_path):
    """Team A's private target with everything TOM hangs on it: a list, a comment, an observation, a data product."""
    settings.MEDIA_ROOT = tmp_path
    settings.DEBUG = True  # /data/<path> is served (by TOM, in DEBUG)
    target = make_target(SECRETS[0])
    target_record_interest(target=target, team=world.a.group)
    target_list = TargetList.objects.create(name=SECRETS[1])
    target_list.targets.add(target)
    assign_perm("tom_targets.view_targetlist", world.a.group, target_list)
    comment = django_comments.get_model().objects.create(
        content_object=target, site=Site.objects.get_current(), user=world.alice, comment=SECRETS[2])
    now = timezone.now()
    request = ObservingRequest.objects.create(target=target, team=world.a.group, telescope_class="1m0",
                                              exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}],
                                              window_start=now, window_end=now + timedelta(hours=30))
    record = ObservationRecord.objects.create(target=target, facility="Baton", observation_id="lsc-1m0-a:77",
                                              status="PENDING", parameters={"baton_request": request.pk})
    product = DataProduct.objects.create(target=target, observation_record=record, product_id="p-a",
                                         data=SimpleUploadedFile(f"{SECRETS[3]}.csv", b"time,mag\n1,15.2\n"))
    data_record_ownership(data=product, team=world.a.group, kind="photometry", acquired_at=now)
    group = DataProductGroup.objects.create(name=SECRETS[4])
    group.dataproduct_set.add(product)
    return {"target": target, "list": target_list, "comment": comment, "record": record, "product": product,
            "group": group}


def pages(ids) -> list[str]:
    t, c = ids["target"].pk, ids["comment"].pk
    return [
        "/targets/", "/observations/list/", "/calendar/create/?date=2026-03-01",
        f"/targets/{t}/share/", f"/targets/targetgrouping/{ids['list'].pk}/share/",
        f"/targets/{t}/persistentshare/manage/", f"/targets/{t}/persistentshare/manage/table",
        f"/comments/flag/{c}/", f"/comments/delete/{c}/", f"/comments/approve/{c}/", f"/comment/{c}/delete",
        "/dataproducts/data/group/add/", f"/dataproducts/data/group/{ids['group'].pk}/",
        f"/data/{ids['product'].data.name}",
        # TOM's own pages that already asked guardian (kept in step with the door by policies.grants).
        f"/targets/{t}/", f"/observations/{ids['record'].pk}/", "/dataproducts/data/", "/calendar/",
        f"/targets/{t}/persistentshare/", "/targets/persistentshare/manage/table", "/targets/targetgrouping/",
        f"/observations/{ids['record'].pk}/update/",
    ]


def leaks(client: Client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code < 500, url
    if url.startswith("/data/"):
        return [] if response.status_code == 404 else [url]  # (DEBUG's 404 page repeats the path asked for)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return [s for s in SECRETS[:4] if s.encode() in body] + (
        [SECRETS[4]] if SECRETS[4].encode() in body and "group/" in url and "add" not in url else [])


@pytest.mark.parametrize("who", ["dave", "carol", "olga"])
def test_tom_pages_show_another_team_nothing_private(world, team_a_world, who):
    client = Client()
    client.force_login(world.user(who))
    found = {url: leaked for url in pages(team_a_world) if (leaked := leaks(client, url))}
    assert found == {}


def test_another_team_cannot_post_a_comment_on_a_private_target(world, team_a_world):
    client = Client()
    client.force_login(world.dave)
    comments = django_comments.get_model().objects
    before = comments.count()
    response = client.post("/comments/post/", {"content_type": f"{Target._meta.app_label}.{Target._meta.model_name}",
                                               "object_pk": team_a_world["target"].pk, "comment": "hello"})
    assert response.status_code == 404 and comments.count() == before


def test_the_owning_team_still_sees_its_own(world, team_a_world):
    client = Client()
    client.force_login(world.bob)
    assert SECRETS[1] in client.get("/targets/").content.decode()  # the target-list choice
    assert SECRETS[1] in client.get("/calendar/create/?date=2026-03-01").content.decode()
    assert SECRETS[0] in client.get("/observations/list/").content.decode()
    assert SECRETS[3] in client.get("/dataproducts/data/group/add/").content.decode()
    assert SECRETS[3] in client.get(f"/dataproducts/data/group/{team_a_world['group'].pk}/").content.decode()
    assert client.get(f"/targets/{team_a_world['target'].pk}/share/").status_code == 200
    assert SECRETS[2] in client.get(f"/comments/flag/{team_a_world['comment'].pk}/").content.decode()
    served = client.get(f"/data/{team_a_world['product'].data.name}")
    assert served.status_code == 200 and b"".join(served.streaming_content) == b"time,mag\n1,15.2\n"



@pytest.mark.parametrize("who", ["dave", "carol", "olga"])
def test_another_team_cannot_feature_a_data_product(world, team_a_world, who):
    from .test_tom_views import refused

    client = Client()
    client.force_login(world.user(who))
    product = team_a_world["product"]
    assert refused(client.post(f"/dataproducts/data/{product.pk}/feature/?target_id={product.target_id}"))
    assert not DataProduct.objects.get(pk=product.pk).featured


def test_featuring_is_a_post_for_the_owning_team(world, team_a_world):
    client = Client()
    client.force_login(world.bob)
    product = team_a_world["product"]
    assert client.get(f"/dataproducts/data/{product.pk}/feature/?target_id={product.target_id}").status_code == 405
    assert not DataProduct.objects.get(pk=product.pk).featured
    response = client.post(f"/dataproducts/data/{product.pk}/feature/")
    assert response.status_code == 302 and response.headers["Location"] == f"/targets/{product.target_id}/"
    assert DataProduct.objects.get(pk=product.pk).featured
