"""The burst: 1,000 alerts matching a team's filter, through real ingest, reach each member as one digest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create
from notifications.adapters import candidates_matches_notify
from notifications.models import DigestKind, Notification
from notifications.services import outbox_due

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
N = 1000


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    from tomsite.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def alerts(n: int) -> bytes:
    return json.dumps({"alerts": [
        {"alert_id": f"burst-{i}", "object_id": f"OBJ-{i}", "ra": 150.0 + (i % 100) * 0.05, "dec": -20.0 + (i // 100) * 0.05,
         "time": "2026-06-01T03:04:05Z", "band": "r", "mag": 17.0 + (i % 20) * 0.1, "mag_err": 0.05}
        for i in range(n)
    ]}).encode()


def test_a_burst_of_1000_matching_alerts_yields_one_digest_per_recipient(people: Any, smtp: Any, eager_tasks: None,
                                                                            django_capture_on_commit_callbacks: Any) -> None:
    from policies.selectors import policy_in_force
    from policies.services import policy_update, team_create

    # Only a Baton team owns filters: alice's team, bob a member, whose policy sends new candidates by email and inbox.
    owner = team_create(name="Burst watchers", admins=[people.alice])
    owner.group.user_set.add(people.bob)
    document = policy_in_force(team=owner).document.to_json()
    document["notifications"] = [{"event": "candidate.new", "roles": ["admin", "member"], "channels": ["email", "inbox"]}]
    policy_update(team=owner, by=people.alice, document=document)
    filter_create(name="bright", team=owner.group, predicates=[{"field": "mag", "op": "<=", "value": 19.5}])
    parsed = parse_alert_batch(body=alerts(N), content_type="application/json", broker="burst-broker")
    result = alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW)
    assert result.matches == N

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        candidates_matches_notify(match_ids=result.match_ids, now=NOW)
    assert callbacks == []  # nothing goes out on its own: not one of the 2,000 emails

    digests = Notification.objects.filter(digest_kind=DigestKind.BURST).order_by("recipient__username")
    assert [(d.recipient.username, d.status, d.items.count()) for d in digests] == [("alice", "open", N), ("bob", "open", N)]
    assert Notification.objects.filter(channel="inbox", status="sent").count() == 2 * N  # the inbox lists every match

    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_due(now=NOW + timedelta(seconds=299))["digests"] == 0
        assert outbox_due(now=NOW + timedelta(seconds=300))["digests"] == 2
    assert sorted((r.rcpt_tos[0], r.message["Subject"]) for r in smtp.received) == [
        ("alice@example.org", "[Baton] 1000 Baton notifications (burst digest)"),
        ("bob@example.org", "[Baton] 1000 Baton notifications (burst digest)"),
    ]
    text = smtp.to("alice@example.org")[0].text
    assert "New candidate" in text and "matched bright" in text and "...and 950 more in your Baton inbox." in text

    # The same matches announced again (a redelivered task) change nothing.
    assert candidates_matches_notify(match_ids=result.match_ids, now=NOW + timedelta(minutes=10)) == []
