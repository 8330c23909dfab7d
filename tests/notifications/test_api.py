"""The notifications API: your notifications, reading them, your preferences; the outbox for staff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from notifications.models import Notification, Preference
from notifications.services import notify_event

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def inbox(people: Any) -> list[Notification]:
    created = []
    for i, event in enumerate(("facility.down", "facility.up", "facility.down")):
        created += notify_event(event=event, teams=[people.team], payload={"facility": f"f{i}", "reason": "r", "new_state": "x"},
                                now=NOW.replace(minute=i))
    return created


def test_the_inbox_newest_first_with_titles_and_links(people: Any, inbox: Any, api_client_for: Any) -> None:
    response = api_client_for(people.alice).get("/api/notifications/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    first = body["results"][0]
    assert (first["event"], first["title"], first["channel"], first["status"]) == (
        "facility.down", "Facility f2 is down: r", "inbox", "sent")
    assert first["link"] == "https://baton.example.org/observatories/" and first["read_at"] is None
    assert [r["payload"]["facility"] for r in body["results"]] == ["f2", "f1", "f0"]


def test_filters_by_channel_unread_and_event(people: Any, inbox: Any, api_client_for: Any) -> None:
    client = api_client_for(people.alice)
    assert client.get("/api/notifications/?channel=all").json()["count"] == 6
    assert client.get("/api/notifications/?channel=email&status=pending").json()["count"] == 3
    assert client.get("/api/notifications/?event=facility.up").json()["count"] == 1
    one = client.get("/api/notifications/").json()["results"][0]["id"]
    assert client.post(f"/api/notifications/{one}/read/").json()["read_at"] is not None
    assert client.get("/api/notifications/?unread=true").json()["count"] == 2
    assert client.get("/api/notifications/?unread=false").json()["count"] == 1
    for bad in ("status=exploded", "unread=perhaps", "event=Not An Event", "channel=%20", "limit=0", "offset=-1"):
        assert client.get(f"/api/notifications/?{bad}").status_code == 400, bad


def test_someone_elses_notification_is_absent(people: Any, inbox: Any, api_client_for: Any) -> None:
    bobs = Notification.objects.filter(recipient=people.bob).earliest("pk")
    client = api_client_for(people.alice)
    for path in (f"/api/notifications/{bobs.pk}/", f"/api/notifications/{2**63}/", "/api/notifications/0/"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/api/notifications/{bobs.pk}/read/").status_code == 404
    bobs.refresh_from_db()
    assert bobs.read_at is None


def test_read_all_marks_only_your_unread_inbox(people: Any, inbox: Any, api_client_for: Any) -> None:
    client = api_client_for(people.alice)
    assert client.post("/api/notifications/read-all/").json() == {"marked": 3}
    assert client.post("/api/notifications/read-all/").json() == {"marked": 0}
    assert Notification.objects.filter(recipient=people.bob, read_at__isnull=True).count() == 6


def test_preferences_read_and_change(people: Any, api_client_for: Any) -> None:
    client = api_client_for(people.alice)
    defaults = client.get("/api/notifications/preferences/").json()
    defaults.pop("updated_at")
    assert defaults == {
        "timezone": "", "quiet_start": None, "quiet_end": None, "digest": "immediate", "digest_hour": None,
        "email_enabled": True, "slack_enabled": True, "muted_events": [], "slack_webhook_url": "", "slack_member_id": "",
    }
    response = client.patch("/api/notifications/preferences/", {
        "timezone": "Australia/Sydney", "quiet_start": "21:30", "quiet_end": "06:15", "digest": "daily", "digest_hour": 7,
        "muted_events": ["candidate.new"], "slack_member_id": "U0ALICE1"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["quiet_start"] == "21:30" and response.json()["muted_events"] == ["candidate.new"]
    saved = Preference.objects.get(user=people.alice)
    assert (saved.timezone, saved.digest, saved.digest_hour, saved.slack_member_id) == ("Australia/Sydney", "daily", 7, "U0ALICE1")


@pytest.mark.parametrize(("change", "field"), [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"quiet_start": "22:00"}, "quiet_end"),
    ({"muted_events": ["candidate.old"]}, "muted_events"),
    ({"slack_webhook_url": "ftp://hooks.example.org/x"}, "slack_webhook_url"),
    ({"slack_member_id": "alice"}, "slack_member_id"),
    ({"digest": "weekly"}, "digest"),
    ({"digest_hour": 24}, "digest_hour"),
    ({"email_enabled": "maybe"}, "email_enabled"),
])
def test_bad_preferences_are_refused_and_change_nothing(people: Any, api_client_for: Any, change: dict[str, Any],
                                                         field: str) -> None:
    response = api_client_for(people.alice).patch("/api/notifications/preferences/", change, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Preference.objects.filter(user=people.alice).exists()


def test_the_outbox_is_for_staff(people: Any, inbox: Any, api_client_for: Any) -> None:
    assert api_client_for(people.alice).get("/api/notifications/outbox/").status_code == 403
    people.bob.is_staff = True
    people.bob.save()
    body = api_client_for(people.bob).get("/api/notifications/outbox/").json()
    assert body["counts"] == {"email": {"pending": 6}, "inbox": {"sent": 6}} and body["failures"] == []
    failed = Notification.objects.filter(channel="email").earliest("pk")
    Notification.objects.filter(pk=failed.pk).update(status="failed", last_error="the mail server refused it")
    body = api_client_for(people.bob).get("/api/notifications/outbox/").json()
    assert [(f["id"], f["status"], f["last_error"]) for f in body["failures"]] == [(failed.pk, "failed", "the mail server refused it")]
    # The person it was for sees it too, among their deliveries.
    mine = api_client_for(failed.recipient).get("/api/notifications/?channel=email&status=failed").json()["results"]
    assert [r["last_error"] for r in mine] == ["the mail server refused it"]


def test_the_admin_lists_the_outbox_and_retries_failures(people: Any, inbox: Any, client: Any) -> None:
    people.bob.is_staff = people.bob.is_superuser = True
    people.bob.save()
    client.force_login(people.bob)
    failed = Notification.objects.filter(channel="email").earliest("pk")
    Notification.objects.filter(pk=failed.pk).update(status="failed", last_error="refused")
    assert client.get("/admin/notifications/notification/?status__exact=failed").status_code == 200
    response = client.post("/admin/notifications/notification/", {"action": "retry_failed", "_selected_action": [failed.pk]})
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)


@pytest.mark.django_db(transaction=True)
def test_over_real_http_with_a_token(people: Any, inbox: Any, live_server: Any) -> None:
    from rest_framework.authtoken.models import Token

    token = Token.objects.get_or_create(user=people.alice)[0].key
    assert requests.get(f"{live_server.url}/api/notifications/", timeout=10).status_code == 401
    response = requests.get(f"{live_server.url}/api/notifications/?limit=2", headers={"Authorization": f"Token {token}"},
                            timeout=10)
    assert response.status_code == 200
    assert [r["title"] for r in response.json()["results"]] == ["Facility f2 is down: r", "Facility f1 is back (x)"]
