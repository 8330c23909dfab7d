"""The inbox and preferences pages, in Django's client and in a real browser."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from notifications.models import Notification, Preference, Status
from notifications.services import notify_event

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PASSWORD = "a long test password 42"


def announce(people: Any) -> None:
    notify_event(event="facility.down", teams=[people.team], payload={"facility": "lsc-1m0-a", "reason": "dome fault"}, now=NOW)
    notify_event(event="request.completed", teams=[people.team], payload={"request_id": 42, "target_name": "M31",
                                                                          "facility": "coj-1m0-a"}, now=NOW)


@pytest.mark.django_db
def test_the_inbox_lists_notifications_and_deliveries_with_failures(client: Any, people: Any) -> None:
    announce(people)
    Notification.objects.filter(recipient=people.alice, channel="email", event="facility.down").update(
        status=Status.FAILED, last_error="the mail server refused alice@example.org")
    client.force_login(people.alice)
    html = client.get("/notifications/").content.decode()
    assert "Facility lsc-1m0-a is down: dome fault" in html and "Request 42 on M31 observed at coj-1m0-a" in html
    assert 'id="nav-inbox-unread">2</span>' in html
    assert "the mail server refused alice@example.org" in html and 'data-status="failed"' in html


@pytest.mark.django_db
def test_opening_a_notification_marks_it_read_and_goes_to_its_page(client: Any, people: Any) -> None:
    announce(people)
    row = Notification.objects.get(recipient=people.alice, channel="inbox", event="request.completed")
    client.force_login(people.alice)
    response = client.post(f"/notifications/{row.pk}/open/")
    assert (response.status_code, response["Location"]) == (302, "/requests/42/")
    row.refresh_from_db()
    assert row.read_at is not None
    bobs = Notification.objects.get(recipient=people.bob, channel="inbox", event="request.completed")
    assert client.post(f"/notifications/{bobs.pk}/open/").status_code == 404
    client.post("/notifications/")  # mark all read
    assert not Notification.objects.filter(recipient=people.alice, channel="inbox", read_at__isnull=True).exists()


@pytest.mark.django_db
def test_the_pages_need_a_login(client: Any) -> None:
    for path in ("/notifications/", "/notifications/preferences/"):
        assert client.get(path).status_code == 302


@pytest.mark.django_db
def test_preferences_page_saves_and_refuses_half_quiet_hours(client: Any, people: Any) -> None:
    client.force_login(people.bob)
    page = client.get("/notifications/preferences/").content.decode()
    assert "Bulge watchers" in page and "Every event, on email, inbox." in page
    form = {"timezone": "America/Santiago", "quiet_start": "23:00", "quiet_end": "06:30", "digest": "hourly", "digest_hour": "",
            "email_enabled": "on", "muted_events": ["candidate.new"], "slack_webhook_url": "", "slack_member_id": ""}
    assert client.post("/notifications/preferences/", form).status_code == 302
    saved = Preference.objects.get(user=people.bob)
    assert (saved.timezone, saved.quiet_start, saved.quiet_end, saved.digest, saved.email_enabled, saved.slack_enabled,
            saved.muted_events) == ("America/Santiago", time(23), time(6, 30), "hourly", True, False, ["candidate.new"])
    response = client.post("/notifications/preferences/", {**form, "quiet_end": "", "timezone": "UTC"})
    assert response.status_code == 200 and "Quiet hours need both a start and an end." in response.content.decode()
    saved.refresh_from_db()
    assert saved.timezone == "America/Santiago"


@pytest.mark.django_db
def test_preferences_page_lists_the_policy_rules_that_name_you(client: Any, people: Any) -> None:
    from policies.selectors import policy_in_force
    from policies.services import policy_update, team_create, team_member_set

    team = team_create(name="Team P", slug="team-p", admins=[people.alice])
    team_member_set(team=team, user=people.bob, role="member", by=people.alice)
    document = policy_in_force(team=team).document.to_json()
    policy_update(team=team, by=people.alice, document={**document, "notifications": [
        {"event": "candidate.new", "roles": ["member"], "channels": ["slack", "email"],
         "conditions": [{"field": "magnitude", "op": "lt", "value": 18}], "digest": "hourly",
         "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}, "quiet_action": "digest"},
        {"event": "claim.overlap", "roles": ["admin"], "channels": ["inbox"]},
    ]})
    client.force_login(people.bob)
    page = client.get("/notifications/preferences/").content.decode()
    assert "candidate.new" in page and "if magnitude lt 18" in page and "slack, email" in page
    assert "quiet 22:00–07:00 Europe/Berlin (digest)" in page and "claim.overlap" not in page.split("<h5>Your teams")[1]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_inbox_and_preferences_in_a_browser(page: Any, live_server: Any, people: Any) -> None:
    announce(people)
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login], input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")

    page.goto(f"{base}/notifications/")
    assert page.locator("#nav-inbox-unread").inner_text().strip() == "2"
    assert page.locator("#inbox tbody tr.fw-bold").count() == 2
    assert "Request 42 on M31 observed at coj-1m0-a" in page.locator("#inbox").inner_text()
    page.click("#mark-all-read")
    page.wait_for_selector("text=Marked 2 notifications read.")
    assert page.locator("#nav-inbox-unread").count() == 0 and page.locator("#inbox tbody tr.fw-bold").count() == 0

    page.goto(f"{base}/notifications/preferences/")
    page.select_option("select[name=timezone]", "Europe/Berlin")
    page.fill("input[name=quiet_start]", "22:00")
    page.fill("input[name=quiet_end]", "07:00")
    page.select_option("select[name=digest]", "daily")
    page.uncheck("input[name=slack_enabled]")
    page.check("input[name=muted_events][value='facility.down']")
    page.click("#save-preferences")
    page.wait_for_selector("text=Your notification preferences are saved.")
    saved = Preference.objects.get(user=people.alice)
    assert (saved.timezone, saved.quiet_start, saved.quiet_end, saved.digest, saved.slack_enabled, saved.email_enabled,
            saved.muted_events) == ("Europe/Berlin", time(22), time(7), "daily", False, True, ["facility.down"])
    # The saved values come back in the form.
    assert page.locator("select[name=timezone]").input_value() == "Europe/Berlin"
    assert page.locator("input[name=quiet_start]").input_value() == "22:00"
