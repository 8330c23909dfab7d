"""The sharing API and page: admins only, credentials never shown, bad input 400 with nothing written,
and the door at send time (withheld data, drills)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from policies.models import PolicyDecision
from policies.services import PolicyInvalid, data_record_ownership, policy_update
from sharing.models import Destination, OutboxItem
from sharing.services import outbox_due, outbox_enqueue_released, outbox_item_deliver
from tests.sharing.conftest import HERMES_TOKEN, TOM_TOKEN, sharing_document
from tomsite import sandbox

pytestmark = pytest.mark.django_db

URL = "/api/teams/bulge/destinations/"
GOOD = {"name": "partner-tom", "kind": "tom", "base_url": "https://tom.example.org/", "token": "s3cret-token"}


def test_an_admin_adds_a_destination_and_its_secrets_are_never_shown(world: Any, api_client_for: Any) -> None:
    client = api_client_for(world.alice)
    response = client.post(URL, GOOD, format="json")
    assert response.status_code == 201, response.data
    assert response.data["auth"] == "token" and "token" not in response.data
    assert "s3cret-token" not in response.content.decode()
    listed = client.get(URL)
    assert [d["name"] for d in listed.data] == ["partner-tom"] and "s3cret-token" not in listed.content.decode()
    pk = response.data["id"]
    changed = client.patch(f"{URL}{pk}/", {"username": "partner", "password": "pw-1234", "token": ""}, format="json")
    assert changed.status_code == 200 and changed.data["auth"] == "basic"
    assert Destination.objects.get(pk=pk).password == "pw-1234"
    assert client.delete(f"{URL}{pk}/").status_code == 204
    assert not Destination.objects.exists()


@pytest.mark.parametrize("who", ["bob", "olga"])
def test_a_non_admin_cannot_manage_destinations_or_see_the_outbox(world: Any, api_client_for: Any, who: str) -> None:
    client = api_client_for(getattr(world, who))
    assert client.get(URL).status_code == 403
    assert client.post(URL, GOOD, format="json").status_code == 403
    assert client.get("/api/teams/bulge/outbox/").status_code == 403
    assert client.post("/api/teams/bulge/outbox/retry/", {"items": [1]}, format="json").status_code == 403
    assert not Destination.objects.exists()
    page = Client()
    page.force_login(getattr(world, who))
    refused = page.get("/teams/bulge/sharing/")  # TOM turns a refused page into the login page
    assert refused.status_code == 302 and refused.url.startswith("/accounts/login/")


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "hermes", "token": ""}, "token"),  # Hermes needs a token
    ({"token": ""}, "token"),  # a TOM needs credentials
    ({"username": "u", "password": "p"}, "token"),  # a token and a username: one or the other
    ({"username": "u"}, "password"),  # basic auth needs both
    ({"token": "", "username": "u"}, "password"),  # basic auth needs both
    ({"base_url": "ftp://tom.example.org/"}, "base_url"),
    ({"base_url": "not a url"}, "base_url"),
    ({"name": "Not A Slug!"}, "name"),
    ({"kind": "email"}, "kind"),
    ({"enabled": "yes"}, "enabled"),
])
def test_bad_input_is_a_400_with_the_field_and_nothing_is_written(world: Any, api_client_for: Any, change: dict, field: str) -> None:
    response = api_client_for(world.alice).post(URL, {**GOOD, **change}, format="json")
    assert response.status_code == 400
    assert field in response.data
    assert not Destination.objects.exists()


def test_a_taken_name_is_a_400(world: Any, api_client_for: Any) -> None:
    client = api_client_for(world.alice)
    assert client.post(URL, GOOD, format="json").status_code == 201
    response = client.post(URL, GOOD, format="json")
    assert response.status_code == 400 and "already" in str(response.data["name"])
    assert Destination.objects.count() == 1


def test_the_policy_names_only_known_destinations_and_only_for_released_data(world: Any, destinations: Any) -> None:
    versions = world.team.policy_versions.count()
    with pytest.raises(PolicyInvalid, match="unknown destination"):
        world.share(days=0, destinations=["nowhere"])
    with pytest.raises(PolicyInvalid, match="only released data leaves"):
        world.share(days=0, destinations=["hermes"], release_to="none")
    with pytest.raises(PolicyInvalid, match="requests are not pushed"):
        document = sharing_document(days=0, destinations=[])
        document["sharing"]["requests"] = {"release_to": "network", "destinations": ["hermes"]}
        policy_update(team=world.team, by=world.alice, document=document)
    assert world.team.policy_versions.count() == versions  # nothing written
    world.share(days=0, destinations=["hermes"])
    # A destination the policy names can be neither renamed nor removed.
    response = _admin(world).delete(f"{URL}{destinations['hermes'].pk}/")
    assert response.status_code == 400 and Destination.objects.filter(name="hermes").exists()


def _admin(world: Any) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(world.alice)
    return client


def test_proprietary_data_is_never_queued_and_data_withdrawn_before_sending_is_withheld(
        world: Any, destinations: Any, partner: Any, django_capture_on_commit_callbacks: Any) -> None:
    world.share(days=30, destinations=["partner-tom"])
    old, new = world.point(age_days=40, mag=17.0), world.point(age_days=5, mag=16.0)
    with django_capture_on_commit_callbacks():  # the worker is not asked here: the test sends in-process
        data_record_ownership(data=[old, new], team=world.team.group, kind="photometry", backfill=True)
    [item] = OutboxItem.objects.all()
    assert item.object_id == old.pk and item.status == "pending"

    # The team lengthens the period before the item is sent: the door refuses it at send time.
    world.share(days=60, destinations=["partner-tom"])
    assert outbox_item_deliver(item_id=item.pk).status == "withheld"
    item.refresh_from_db()
    assert item.status == "withheld" and "not released" in item.last_error
    assert partner.data == [] and partner.targets == []
    assert PolicyDecision.objects.filter(action="release", decision="withheld", object_id=str(old.pk)).exists()

    # Released again (the team goes back to 30 days): queued again, sent once.
    with django_capture_on_commit_callbacks():
        world.share(days=30, destinations=["partner-tom"])
    item.refresh_from_db()
    assert item.status == "pending"
    assert outbox_item_deliver(item_id=item.pk).status == "sent"
    assert [d["value"]["brightness"] for d in partner.data] == [17.0]
    assert outbox_item_deliver(item_id=item.pk).status == "skipped"  # a doubled task changes nothing
    assert len(partner.data) == 1


def test_wrong_credentials_fail_permanently_and_show_in_the_outbox(world: Any, destinations: Any, partner: Any,
                                                                      api_client_for: Any, monkeypatch: Any) -> None:
    import policies.hooks

    announced: list[tuple[str, dict]] = []
    real_notify = policies.hooks.notify
    monkeypatch.setattr(policies.hooks, "notify",
                        lambda event, teams, payload, **kw: announced.append((event, dict(payload))) or real_notify(
                            event, teams, payload, **kw))
    Destination.objects.filter(name="hermes").update(token="wrong")
    world.share(days=0, destinations=["hermes"])
    data_record_ownership(data=[world.point(age_days=1, mag=15.0)], team=world.team.group, kind="photometry")
    data_record_ownership(data=[world.point(age_days=2, mag=15.1)], team=world.team.group, kind="photometry")
    item, second = OutboxItem.objects.order_by("pk")
    assert outbox_item_deliver(item_id=item.pk).status == "failed"
    OutboxItem.objects.filter(pk=second.pk).update(status="pending")
    outbox_item_deliver(item_id=second.pk)
    # The team is told once for the episode, not once per datum.
    assert [(e, p["destination"]) for e, p in announced if e == "sharing.failed"] == [("sharing.failed", "hermes")]
    # The sharing page shows the destination's health: never a success yet, and the latest error.
    page = Client()
    page.force_login(world.alice)
    text = page.get("/teams/bulge/sharing/").content.decode()
    assert "never" in text and "401" in text
    listed = api_client_for(world.alice).get("/api/teams/bulge/outbox/?status=failed")
    assert listed.status_code == 200
    rows = listed.data["results"]
    assert len(rows) == 2
    for row in rows:
        assert row["destination"] == "hermes" and "refused" in row["last_error"] and "401" in row["last_error"]
    assert api_client_for(world.alice).get("/api/teams/bulge/outbox/?status=bogus").status_code == 400
    # Fixed, and sent again by hand.
    Destination.objects.filter(name="hermes").update(token=HERMES_TOKEN)
    retried = api_client_for(world.alice).post("/api/teams/bulge/outbox/retry/", {"items": [item.pk, second.pk]},
                                               format="json")
    assert retried.status_code == 200 and retried.data == {"requeued": 2}
    assert outbox_item_deliver(item_id=item.pk).status == "sent"
    outbox_item_deliver(item_id=second.pk)
    assert set(OutboxItem.objects.values_list("status", flat=True)) == {"sent"}
    assert 1 <= len(partner.messages) <= 2
    # A success ends the episode: the next failure there is announced again.
    assert Destination.objects.get(name="hermes").failure_notified_at is None


def test_a_drill_enqueues_and_sends_nothing(world: Any, destinations: Any, partner: Any, monkeypatch: Any,
                                            django_capture_on_commit_callbacks: Any) -> None:
    world.share(days=0, destinations=["partner-tom", "hermes"])
    # The process runs a drill (the drills app enters it with tomsite.sandbox.running, in a schema of its own).
    monkeypatch.setattr(sandbox, "active", lambda: True)
    data_record_ownership(data=[world.point(age_days=1, mag=15.0)], team=world.team.group, kind="photometry")
    assert not OutboxItem.objects.exists()
    assert outbox_enqueue_released(team=world.team.group, now=world.target.created) == 0
    # Outside the drill (e.g. the hourly reconciler) the released datum is queued, but a send inside a drill does nothing.
    monkeypatch.setattr(sandbox, "active", lambda: False)
    with django_capture_on_commit_callbacks():
        assert outbox_enqueue_released(team=world.team.group, now=world.target.created + timedelta(days=1)) == 2
    monkeypatch.setattr(sandbox, "active", lambda: True)
    assert {outbox_item_deliver(item_id=pk).status for pk in OutboxItem.objects.values_list("pk", flat=True)} == {"skipped"}
    assert outbox_due()["retries"] == 0
    assert partner.data == [] and partner.messages == []


def test_the_sharing_page_shows_destinations_and_the_outbox_to_an_admin(world: Any, destinations: Any) -> None:
    page = Client()
    page.force_login(world.alice)
    response = page.get("/teams/bulge/sharing/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "partner-tom" in text and "hermes" in text and TOM_TOKEN not in text and HERMES_TOKEN not in text
    added = page.post("/teams/bulge/sharing/", {"name": "other-baton", "kind": "tom", "base_url": "https://baton.example.net/",
                                                 "username": "bulge", "password": "pw-5678"})
    assert added.status_code == 302 and Destination.objects.filter(name="other-baton", username="bulge").exists()
    refused = page.post("/teams/bulge/sharing/", {"name": "h2", "kind": "hermes", "base_url": "https://hermes.example.org/"})
    assert refused.status_code == 400 and not Destination.objects.filter(name="h2").exists()
