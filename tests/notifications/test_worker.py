"""End to end with a real Celery worker: email to a real SMTP server and Slack to a local webhook, and
nothing lost while both are down."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from notifications.models import Notification, TeamSlack
from notifications.services import notify_event, outbox_due
from tests.notifications.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def statuses(event: str) -> list[tuple[str, str]]:
    return sorted(Notification.objects.filter(event=event).exclude(channel="inbox").values_list("channel", "status"))


def test_the_worker_delivers_and_nothing_is_lost_while_smtp_and_slack_are_down(
        notifications_worker: Any, smtp_sink: Any, slack_sink: Any, people: Any, settings: Any) -> None:
    smtp_sink.start()
    slack_sink.start()
    smtp_sink.received.clear()
    slack_sink.posts.clear()
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "DEFAULT_CHANNELS": ["email", "slack", "inbox"]}
    TeamSlack.objects.create(team=people.team, webhook_url=slack_sink.webhook("worker-team"))

    # Up: the rows commit, the worker sends them.
    notify_event(event="facility.down", teams=[people.team], payload={"facility": "cpt-1m0-a", "reason": "hydraulics"})
    wait_for(lambda: statuses("facility.down") == [("email", "sent"), ("email", "sent"), ("slack", "sent")],
             what="the worker to send the first event")
    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == ["alice@example.org", "bob@example.org"]
    assert [p.body["blocks"][0]["text"]["text"] for p in slack_sink.to("/hooks/worker-team")] == [
        "Facility cpt-1m0-a is down: hydraulics"]

    # Down: the worker tries, fails, and the rows say so; nothing is dropped.
    smtp_sink.stop()
    slack_sink.stop()
    notify_event(event="facility.up", teams=[people.team], payload={"facility": "cpt-1m0-a", "new_state": "available"})
    wait_for(lambda: statuses("facility.up") == [("email", "retrying"), ("email", "retrying"), ("slack", "retrying")],
             what="the worker's failed attempts")
    errors = set(Notification.objects.filter(event="facility.up").exclude(channel="inbox").values_list("last_error", flat=True))
    assert {e.split(":")[0] for e in errors} == {"the mail server is unreachable", "Slack is unreachable"}

    # Back: the pump (beat's task, with the clock past the backoff) re-drives them; each arrives once.
    smtp_sink.start()
    slack_sink.start()
    assert outbox_due(now=timezone.now() + timedelta(minutes=5))["retries"] == 3
    wait_for(lambda: statuses("facility.up") == [("email", "sent"), ("email", "sent"), ("slack", "sent")],
             what="the worker to send the held-back event")
    up = [r for r in smtp_sink.received if r.message["X-Baton-Event"] == "facility.up"]
    assert sorted(r.rcpt_tos[0] for r in up) == ["alice@example.org", "bob@example.org"]
    assert len(slack_sink.to("/hooks/worker-team")) == 2
    assert Notification.objects.filter(event="facility.up", channel="email").earliest("pk").attempts == 2
