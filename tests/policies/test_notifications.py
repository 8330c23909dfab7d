"""Notification rules as data: who, which events, channels, conditions, quiet hours, digests; and the door's veto."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from policies.documents import Condition, QuietHours
from policies.hooks import notify, scheduling_notify
from policies.models import InboxNotification, PolicyDecision
from policies.notifications import notification_allowed, notification_rules_for
from policies.services import policy_update, target_record_interest

from .conftest import T0, document, make_target, rule

pytestmark = pytest.mark.django_db

# T0 is 12:00 UTC = 13:00 in Berlin (CET, before the DST switch at the end of March).
NIGHT = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 in Berlin


def with_rules(world, *rules):
    return policy_update(team=world.a, by=world.alice, now=T0, document={**document(), "notifications": list(rules)})


def a_rule(event="claim.overlap", **kwargs):
    return {"event": event, "roles": ["admin"], "users": [], "channels": ["inbox"], "conditions": [], "quiet_hours": None,
            "quiet_action": "hold", "digest": "immediate", "urgent_bypasses_quiet": True, **kwargs}


def test_quiet_hours_and_conditions_as_data():
    berlin = QuietHours(start=time(22, 0), end=time(7, 0), timezone="Europe/Berlin")
    assert berlin.contains(NIGHT) and not berlin.contains(T0)
    assert berlin.ends_after(NIGHT) == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 20, 30, tzinfo=UTC)  # 22:30 CEST
    assert berlin.contains(summer) and berlin.ends_after(summer) == datetime(2026, 7, 2, 5, 0, tzinfo=UTC)
    assert not QuietHours(start=time(9), end=time(9), timezone="UTC").contains(T0)
    assert Condition("alert.mag", "lt", 18).holds({"alert": {"mag": 17.2}})
    assert not Condition("alert.mag", "lt", 18).holds({"alert": {}})
    assert not Condition("mag", "lt", 18).holds({"mag": "bright"})
    assert Condition("cls", "in", ["SN Ia", "SN II"]).holds({"cls": "SN II"})


def test_rules_choose_recipients_channels_and_timing(world):
    with_rules(
        world,
        a_rule(roles=["admin", "member"], channels=["inbox", "email"]),
        a_rule(event="candidate.new", roles=[], users=[world.bob.pk], conditions=[{"field": "magnitude", "op": "lt", "value": 18}],
               quiet_hours={"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}, quiet_action="hold"),
        a_rule(event="request.completed", digest="daily"),
        a_rule(event="request.failed", quiet_hours={"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}, quiet_action="drop"),
    )
    assert [i for i, _ in notification_rules_for(team=world.a, event="candidate.new")] == [1]
    sent = notify("claim.overlap", [world.a.group], {"reason": "x"}, now=T0)
    assert sorted((n.recipient.username, n.channel, n.status) for n in sent) == [
        ("alice_a", "email", "pending"), ("alice_a", "inbox", "delivered"), ("bob_a", "email", "pending"), ("bob_a", "inbox", "delivered")]
    assert notify("candidate.new", [world.a.group], {"magnitude": 19.0}, now=T0) == []
    assert PolicyDecision.objects.filter(decision="suppressed", reason="rule 1: conditions not met").count() == 1
    held = notify("candidate.new", [world.a.group], {"magnitude": 17.0}, now=NIGHT)
    assert [(n.recipient, n.status, n.deliver_after) for n in held] == [(world.bob, "held", datetime(2026, 3, 2, 6, tzinfo=UTC))]
    urgent = notify("candidate.new", [world.a.group], {"magnitude": 17.0, "urgent": True}, now=NIGHT)
    assert [n.status for n in urgent] == ["delivered"]
    digest = notify("request.completed", [world.a.group], {}, now=T0)
    assert [(n.status, n.digest) for n in digest] == [("digest", "daily")]
    assert notify("request.failed", [world.a.group], {}, now=NIGHT) == []
    assert PolicyDecision.objects.filter(decision="suppressed", reason="quiet hours (dropped)").count() == 1
    sent_rows = PolicyDecision.objects.filter(action="notify", decision="sent")
    assert {d.policy_version.number for d in sent_rows} == {2}


def test_the_default_rule_tells_the_admins(world):
    sent = notify("policy.changed", [world.b.group], {}, now=T0)
    assert [(n.recipient, n.rule_index) for n in sent] == [(world.carol, None)]


def test_the_door_vetoes_what_the_recipient_may_not_see(world):
    target = make_target("AT notify")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    payload = {"target_id": target.pk}
    assert notification_allowed(recipient=world.bob, event="data.new", payload=payload, now=T0)
    refused = notification_allowed(recipient=world.carol, event="data.new", payload=payload, now=T0)
    assert not refused and refused.reason == "requests of team-a is not shared"
    assert not notification_allowed(recipient=world.bob, event="no.such.event", payload={}, now=T0)
    assert not notification_allowed(recipient=world.bob, event="data.new", payload={"target_id": 10**9}, now=T0)
    assert not notification_allowed(recipient=world.bob, event="data.new", payload={"data": [{"model": "nope.nope", "id": 1}]})
    assert not notification_allowed(recipient=world.bob, event="data.new", payload={"request": {"team_id": world.a.group_id}})
    owned = {"owned": {"team_id": world.a.group_id, "kind": "photometry", "acquired_at": T0.isoformat()}}
    assert notification_allowed(recipient=world.bob, event="data.new", payload=owned, now=T0)
    assert not notification_allowed(recipient=world.carol, event="data.new", payload=owned, now=T0)
    world.bob.is_active = False
    world.bob.save()
    assert not notification_allowed(recipient=world.bob, event="data.new", payload={}, now=T0)


def test_the_schedulers_hook_tells_the_requests_team_only_what_it_may_see(world):
    policy_update(team=world.a, by=world.alice, now=T0, document=document(requests=rule((), 0, "network")))
    target = make_target("AT sched")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    request = SimpleNamespace(pk=7, team=world.a.group, team_id=world.a.group_id, target_id=target.pk, created_at=T0)
    scheduling_notify(event="request.completed", request=request, facility="lsc-1m0-a")
    sent = InboxNotification.objects.get(event="request.completed")
    assert sent.recipient == world.alice and sent.payload["request_id"] == 7 and sent.payload["facility"] == "lsc-1m0-a"


def test_inbox_api_shows_only_your_own(world):
    notify("policy.changed", [world.a.group, world.b.group], {"version": 3}, now=T0)
    client = APIClient()
    client.force_authenticate(world.alice)
    rows = client.get("/api/inbox/").json()["results"]
    assert [(r["event"], r["team"], r["payload"]) for r in rows] == [("policy.changed", "Team A", {"version": 3})]
    client.force_authenticate(world.olga)
    assert client.get("/api/inbox/").json()["results"] == []
    assert notify("policy.changed", [world.a.group], {}, now=T0 + timedelta(seconds=1))[0].status == "delivered"


DELIVERED: list[tuple] = []


def fake_delivery(event, teams, payload, *, now):
    """Stands in for the notifications app's adapter (notifications.adapters.policies_notify)."""
    DELIVERED.append((event, [g.name for g in teams], dict(payload), now))
    team = teams[0]
    return [SimpleNamespace(status="pending", team_id=team.pk, policy_version_id=None, recipient=None, rule="rule 0",
                            channel="email"),
            SimpleNamespace(status="suppressed", team_id=team.pk, policy_version_id=None, recipient=None, rule="door",
                            channel="slack")]


def test_with_a_delivery_hook_notify_hands_over_and_audits(world, settings):
    settings.BATON_POLICIES = {**settings.BATON_POLICIES, "NOTIFY": "tests.policies.test_notifications.fake_delivery"}
    DELIVERED.clear()
    made = notify("claim.overlap", [world.a.group], {"claim_id": 1}, now=T0)
    assert len(made) == 2 and DELIVERED == [("claim.overlap", ["Team A"], {"claim_id": 1}, T0)]
    rows = PolicyDecision.objects.filter(action="notify").order_by("pk")
    assert [(r.decision, r.reason, r.detail["channel"]) for r in rows] == [("sent", "rule 0", "email"), ("suppressed", "door", "slack")]
    assert not InboxNotification.objects.exists()
