"""Delivery through a real SMTP server and a local endpoint posing as Slack: what arrives, failures, retries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifications.models import DigestKind, Notification, Status, TeamSlack
from notifications.services import (
    notification_deliver,
    notifications_retry,
    notify_event,
    outbox_due,
    preference_update,
)
from tests.notifications.conftest import BOT_TOKEN

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DOWN = {"facility": "lsc-1m0-a", "facility_name": "LSC 1m A", "old_state": "available", "new_state": "downtime",
        "reason": "dome <shutter> & hydraulics fault", "request_ids": [11, 12]}


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run enqueued tasks in this process (with their on-commit callbacks executed by the test)."""
    from tomsite.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def deliver_pending(now: datetime = NOW) -> list[str]:
    return [notification_deliver(notification_id=pk, now=now).status
            for pk in Notification.objects.filter(status__in=[Status.PENDING, Status.RETRYING]).order_by("pk")
            .values_list("pk", flat=True)]


# --- email ---------------------------------------------------------------------------------------


def test_email_arrives_at_a_real_smtp_server_as_text_and_html(people: Any, smtp: Any) -> None:
    notify_event(event="facility.down", teams=[people.team], payload=DOWN, now=NOW)
    assert deliver_pending() == ["sent", "sent"]

    got = smtp.to("alice@example.org")
    assert len(got) == 1 and len(smtp.received) == 2
    mail = got[0]
    assert mail.message["Subject"] == "[Baton] Facility lsc-1m0-a is down: dome <shutter> & hydraulics fault"
    assert mail.message["From"] == "Baton <baton@localhost>" and mail.message["X-Baton-Event"] == "facility.down"
    row = Notification.objects.get(recipient=people.alice, channel="email")
    assert mail.message["Message-ID"] == f"<baton-notification-{row.pk}@baton.example.org>" == row.provider_id
    assert "Open in Baton: https://baton.example.org/observatories/" in mail.text
    assert "Reason: dome <shutter> & hydraulics fault" in mail.text
    assert "dome &lt;shutter&gt; &amp; hydraulics fault" in mail.html  # escaped in HTML
    assert 'href="https://baton.example.org/observatories/"' in mail.html
    assert (row.status, row.sent_at, row.attempts, row.last_error) == ("sent", NOW, 1, "")


def test_a_second_delivery_of_a_sent_row_sends_nothing(people: Any, smtp: Any) -> None:
    (row,) = [n for n in notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
              if n.channel == "email"]
    assert notification_deliver(notification_id=row.pk, now=NOW).status == "sent"
    assert notification_deliver(notification_id=row.pk, now=NOW).status == "skipped"
    assert notification_deliver(notification_id=10**9, now=NOW).status == "skipped"
    assert len(smtp.received) == 1


def test_smtp_down_then_back_nothing_is_lost_and_it_arrives_once(people: Any, smtp: Any, eager_tasks: None,
                                                                   django_capture_on_commit_callbacks: Any) -> None:
    smtp.stop()
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
    row = Notification.objects.get(channel="email")
    outcome = notification_deliver(notification_id=row.pk, now=NOW)
    assert (outcome.status, outcome.retry_in) == ("retry", 30.0)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("retrying", 1, NOW + timedelta(seconds=30))
    assert "the mail server is unreachable" in row.last_error

    # Still down at the next try: the backoff doubles.
    outcome = notification_deliver(notification_id=row.pk, now=NOW + timedelta(seconds=30))
    assert outcome.retry_in == 60.0
    assert outbox_due(now=NOW + timedelta(seconds=89))["retries"] == 0  # not due yet

    smtp.start()
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_due(now=NOW + timedelta(seconds=90))["retries"] == 1  # the pump runs the delivery task
    assert len(smtp.to("alice@example.org")) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, "")
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_due(now=NOW + timedelta(hours=1)) == {"released": 0, "digests": 0, "retries": 0, "lost": 0,
                                                              "taken_back": 0}
    assert len(smtp.received) == 1  # exactly once


def test_a_refused_address_fails_permanently_and_visibly(people: Any, smtp: Any) -> None:
    smtp.refuse.add("bob@example.org")
    notify_event(event="facility.down", teams=[people.team], payload=DOWN, now=NOW)
    assert sorted(deliver_pending()) == ["failed", "sent"]
    failed = Notification.objects.get(recipient=people.bob, channel="email")
    assert failed.status == "failed" and "refused bob@example.org" in failed.last_error and "550" in failed.last_error
    assert outbox_due(now=NOW + timedelta(days=1))["retries"] == 0  # a permanent failure is not retried

    smtp.refuse.clear()  # the operator fixed it: send it again
    assert notifications_retry(notification_ids=[failed.pk], now=NOW) == 1
    assert deliver_pending() == ["sent"]
    assert len(smtp.to("bob@example.org")) == 1


def test_out_of_attempts_is_a_permanent_failure(people: Any, smtp: Any, settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "MAX_ATTEMPTS": 2}
    smtp.stop()
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
    row = Notification.objects.get(channel="email")
    assert notification_deliver(notification_id=row.pk, now=NOW).status == "retry"
    assert notification_deliver(notification_id=row.pk, now=NOW + timedelta(minutes=1)).status == "failed"
    row.refresh_from_db()
    assert row.status == "failed" and row.last_error.startswith("gave up after 2 attempts: the mail server is unreachable")


def test_a_send_left_by_a_lost_worker_is_taken_back(people: Any, smtp: Any) -> None:
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
    Notification.objects.filter(channel="email").update(status=Status.SENDING, last_attempt_at=NOW, attempts=1)
    assert outbox_due(now=NOW + timedelta(seconds=899))["taken_back"] == 0
    assert outbox_due(now=NOW + timedelta(seconds=900))["taken_back"] == 1
    assert deliver_pending(now=NOW + timedelta(seconds=901)) == ["sent"]
    assert len(smtp.received) == 1


def test_a_pending_row_whose_task_was_lost_is_enqueued_again(people: Any, smtp: Any, eager_tasks: None,
                                                             django_capture_on_commit_callbacks: Any) -> None:
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)  # its task never ran
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_due(now=NOW + timedelta(seconds=119))["lost"] == 0
        assert outbox_due(now=NOW + timedelta(seconds=120))["lost"] == 1
    assert len(smtp.received) == 1


# --- Slack -----------------------------------------------------------------------------------------


@pytest.fixture
def slack_rules(settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "DEFAULT_CHANNELS": ["slack", "inbox"]}


def test_a_team_webhook_gets_one_block_kit_message_per_event(people: Any, slack: Any, slack_rules: None) -> None:
    TeamSlack.objects.create(team=people.team, webhook_url=slack.webhook("team"))
    created = notify_event(event="facility.down", teams=[people.team], payload=DOWN, now=NOW)
    # Both members are named by the rule, but the team's channel hears of the event once.
    assert sorted((n.channel, n.address) for n in created if n.channel == "slack") == [("slack", f"webhook:team:{people.team.pk}")]
    assert deliver_pending() == ["sent"]

    (post,) = slack.to("/hooks/team")
    blocks = post.body["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "context", "actions"]
    assert blocks[0]["text"]["text"] == "Facility lsc-1m0-a is down: dome <shutter> & hydraulics fault"
    assert "*reason:* dome &lt;shutter&gt; &amp; hydraulics fault" in blocks[1]["text"]["text"]
    assert blocks[3]["elements"][0]["url"] == "https://baton.example.org/observatories/"
    assert post.body["text"].endswith("<https://baton.example.org/observatories/|Open in Baton>")
    row = Notification.objects.get(channel="slack")
    assert (row.status, row.provider_id, row.personal) == ("sent", "webhook 200", False)


def test_the_bot_messages_a_person_directly(people: Any, slack: Any, slack_rules: None, settings: Any) -> None:
    settings.SLACK_BOT_TOKEN = BOT_TOKEN
    preference_update(user=people.alice, changes={"slack_member_id": "U0ALICE1"})
    notify_event(event="request.completed", teams=[], users=[people.alice], payload={"request_id": 5, "target_name": "M31",
                                                                                     "facility": "lsc"}, now=NOW)
    assert deliver_pending() == ["sent"]
    (post,) = slack.to("/api/chat.postMessage")
    assert post.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert post.body["channel"] == "U0ALICE1" and post.body["blocks"][0]["text"]["text"] == "Request 5 on M31 observed at lsc"
    assert post.body["blocks"][3]["elements"][0]["url"] == "https://baton.example.org/requests/5/"
    assert Notification.objects.get(channel="slack").provider_id == "1700000000.000001"


def test_a_persons_own_webhook_wins_over_the_teams(people: Any, slack: Any, slack_rules: None) -> None:
    TeamSlack.objects.create(team=people.team, webhook_url=slack.webhook("team"))
    preference_update(user=people.bob, changes={"slack_webhook_url": slack.webhook("bob")})
    notify_event(event="facility.down", teams=[people.team], payload=DOWN, now=NOW)
    deliver_pending()
    assert (len(slack.to("/hooks/team")), len(slack.to("/hooks/bob"))) == (1, 1)


def test_slack_down_then_back_nothing_is_lost_and_it_arrives_once(people: Any, slack: Any, slack_rules: None) -> None:
    TeamSlack.objects.create(team=people.team, webhook_url=slack.webhook("team"))
    slack.stop()
    notify_event(event="facility.down", teams=[people.team], payload=DOWN, now=NOW)
    assert deliver_pending() == ["retry"]
    row = Notification.objects.get(channel="slack")
    assert row.status == "retrying" and "Slack is unreachable" in row.last_error
    slack.start()
    assert deliver_pending(now=NOW + timedelta(seconds=30)) == ["sent"]
    assert deliver_pending(now=NOW + timedelta(seconds=60)) == []
    assert len(slack.to("/hooks/team")) == 1


@pytest.mark.parametrize(("status", "body", "headers", "outcome", "next_in"), [
    (429, "rate_limited", {"Retry-After": "120"}, "retry", 120),
    (500, "internal_error", {}, "retry", 30),
    (404, "no_service", {}, "failed", None),
    (403, "invalid_token", {}, "failed", None),
])
def test_slack_answers_are_sorted_into_transient_and_permanent(people: Any, slack: Any, slack_rules: None, status: int,
                                                               body: str, headers: dict[str, str], outcome: str,
                                                               next_in: int | None) -> None:
    TeamSlack.objects.create(team=people.team, webhook_url=slack.webhook("team"))
    slack.failures.append((status, body, headers))
    notify_event(event="facility.down", teams=[people.team], payload=DOWN, now=NOW)
    assert deliver_pending() == [outcome]
    row = Notification.objects.get(channel="slack")
    assert row.last_error == f"Slack answered {status}: {body}"
    assert row.next_attempt_at == (NOW + timedelta(seconds=next_in) if next_in else None)


@pytest.mark.parametrize(("error", "outcome"), [("ratelimited", "retry"), ("channel_not_found", "failed")])
def test_bot_errors_are_sorted_too(people: Any, slack: Any, slack_rules: None, settings: Any, error: str, outcome: str) -> None:
    settings.SLACK_BOT_TOKEN = BOT_TOKEN
    preference_update(user=people.alice, changes={"slack_member_id": "U0ALICE1"})
    slack.failures.append((200, f'{{"ok": false, "error": "{error}"}}', {}))
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
    assert deliver_pending() == [outcome]
    assert Notification.objects.get(channel="slack").last_error == f"Slack answered 200: {error}"


def test_no_slack_destination_is_a_visible_failure(people: Any, slack: Any, slack_rules: None) -> None:
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
    row = Notification.objects.get(channel="slack")
    assert (row.status, row.last_error) == ("failed", "Slack is not set up for you or your team")


# --- digests ---------------------------------------------------------------------------------------


def test_a_digest_arrives_as_one_message_listing_its_notifications(people: Any, smtp: Any, slack: Any, settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "DEFAULT_CHANNELS": ["email", "slack"],
                                    "DIGEST_MAX_ITEMS": 3}
    preference_update(user=people.alice, changes={"digest": "hourly", "slack_webhook_url": slack.webhook("alice")})
    for i in range(5):
        notify_event(event="facility.down", teams=[], users=[people.alice], payload={**DOWN, "facility": f"f{i}"},
                     now=NOW + timedelta(minutes=i))
    outbox_due(now=NOW + timedelta(hours=1))
    assert deliver_pending(now=NOW + timedelta(hours=1)) == ["sent", "sent"]

    (mail,) = smtp.received
    assert mail.message["Subject"] == "[Baton] 5 Baton notifications (hourly digest)"
    assert "Facility f0 is down" in mail.text and "Facility f2 is down" in mail.text and "Facility f3" not in mail.text
    assert "...and 2 more in your Baton inbox." in mail.text
    (post,) = slack.to("/hooks/alice")
    assert post.body["blocks"][0]["text"]["text"] == "5 Baton notifications (hourly digest)"
    assert post.body["blocks"][1]["text"]["text"].count("• <https://baton.example.org/observatories/|Facility f") == 3
    digests = Notification.objects.filter(digest_kind=DigestKind.HOURLY)
    assert sorted(digests.values_list("channel", "status")) == [("email", "sent"), ("slack", "sent")]


def test_the_delivery_task_records_a_failed_attempt_once(people: Any, smtp: Any, eager_tasks: None) -> None:
    from notifications.tasks import notification_deliver_task

    smtp.stop()
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
    row = Notification.objects.get(channel="email")
    assert notification_deliver_task.apply(args=(row.pk,)).get() == "retry"
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("retrying", 1)  # one attempt; the pump (or Celery's countdown) does the next


def test_while_no_worker_runs_the_pump_re_enqueues_a_retry_once_per_stale_period(people: Any, smtp: Any,
                                                                                  django_capture_on_commit_callbacks: Any) -> None:
    smtp.stop()
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=DOWN, now=NOW)
    row = Notification.objects.get(channel="email")
    notification_deliver(notification_id=row.pk, now=NOW)  # retry due at NOW + 30 s
    with django_capture_on_commit_callbacks() as enqueued:  # nobody runs them: the worker is away
        assert outbox_due(now=NOW + timedelta(seconds=30))["retries"] == 1
        assert outbox_due(now=NOW + timedelta(seconds=90))["retries"] == 0
        assert outbox_due(now=NOW + timedelta(seconds=150))["retries"] == 1
    assert len(enqueued) == 2
