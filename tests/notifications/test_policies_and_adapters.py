"""Team policies' rules and door, and the adapters other apps' hooks call (scheduling, policies, candidates, facilities)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from notifications import adapters
from notifications.models import DigestKind, Notification
from notifications.selectors import notifications_for
from notifications.services import notify_event

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def policy_team(people: Any) -> Any:
    """A policies team: alice its admin, bob a member."""
    from policies.services import team_create, team_member_set

    team = team_create(name="Team P", slug="team-p", admins=[people.alice], now=NOW - timedelta(days=30))
    team_member_set(team=team, user=people.bob, role="member", by=people.alice)
    return team


def set_rules(team: Any, by: Any, *rules: dict[str, Any]) -> Any:
    from policies.selectors import policy_in_force
    from policies.services import policy_update

    document = policy_in_force(team=team).document.to_json()
    return policy_update(team=team, by=by, document={**document, "notifications": list(rules)}, now=NOW - timedelta(days=1))


@pytest.fixture
def target(policy_team: Any) -> Target:
    target = Target.objects.create(name="Gaia26abc", type=Target.SIDEREAL, ra=268.5, dec=-30.5, epoch=2000.0)
    assign_perm("tom_targets.view_target", policy_team.group, target)  # as candidates' ingest grants a matched team
    return target


def candidate_payload(target: Target, magnitude: float) -> dict[str, Any]:
    return {"candidate_id": int(magnitude * 10), "target_id": target.pk, "target_name": target.name, "broker": "ALeRCE",
            "band": "r", "magnitude": magnitude, "match": "filter", "match_name": "bright"}


def got(**filters: Any) -> list[tuple[str, str, str]]:
    return sorted((n.recipient.username, n.channel, n.status)
                  for n in Notification.objects.filter(digest_kind="", **filters).select_related("recipient"))


# --- the policy's rules -------------------------------------------------------------------------------


def test_a_policy_rule_chooses_roles_channels_and_conditions(people: Any, policy_team: Any, target: Target) -> None:
    version = set_rules(policy_team, people.alice, {
        "event": "candidate.new", "roles": ["admin", "member"], "channels": ["email", "inbox"],
        "conditions": [{"field": "magnitude", "op": "lt", "value": 18}],
    })
    assert notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(target, 19.2), now=NOW) == []
    notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(target, 17.1), now=NOW)
    assert got() == [("alice", "email", "pending"), ("alice", "inbox", "sent"), ("bob", "email", "pending"), ("bob", "inbox", "sent")]
    row = Notification.objects.filter(channel="email").earliest("pk")
    assert (row.rule, row.policy_version_id) == ("policy team-p v2 rule 0", version.pk)


def test_without_a_rule_the_policy_default_tells_the_admins_in_the_inbox(people: Any, policy_team: Any, target: Target) -> None:
    notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(target, 17.0), now=NOW)
    assert got() == [("alice", "inbox", "sent")]
    assert Notification.objects.get().rule == "policy team-p v1 default rule"


@pytest.mark.parametrize(("action", "expected"), [
    ("hold", ("held", datetime(2026, 3, 11, 7, 0, tzinfo=UTC))),
    ("digest", ("digested", None)),
    ("drop", ("suppressed", None)),
])
def test_the_rules_quiet_hours_hold_digest_or_drop(people: Any, policy_team: Any, target: Target, action: str,
                                                   expected: tuple[str, Any]) -> None:
    set_rules(policy_team, people.alice, {
        "event": "candidate.new", "roles": ["member"], "channels": ["email"], "quiet_action": action,
        "quiet_hours": {"start": "11:00", "end": "07:00", "timezone": "UTC"},
    })
    notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(target, 17.0), now=NOW)
    row = Notification.objects.get(recipient=people.bob, digest_kind="")
    assert (row.status, row.not_before) == expected
    if action == "digest":
        digest = Notification.objects.get(items=row)
        assert (digest.digest_kind, digest.not_before) == (DigestKind.QUIET, datetime(2026, 3, 11, 7, 0, tzinfo=UTC))
    # Urgent events come through the rule's quiet hours (urgent_bypasses_quiet defaults to true).
    notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(target, 16.0), urgent=True, now=NOW)
    assert Notification.objects.get(recipient=people.bob, payload__magnitude=16.0).status == "pending"


def test_a_rule_may_keep_even_urgent_events_quiet(people: Any, policy_team: Any, target: Target) -> None:
    set_rules(policy_team, people.alice, {
        "event": "candidate.new", "roles": ["member"], "channels": ["email"], "urgent_bypasses_quiet": False,
        "quiet_hours": {"start": "11:00", "end": "07:00", "timezone": "UTC"},
    })
    notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(target, 17.0), urgent=True, now=NOW)
    assert Notification.objects.get(recipient=people.bob).status == "held"


def test_a_rule_digest_wins_over_a_persons_immediate_but_not_the_other_way(people: Any, policy_team: Any, target: Target) -> None:
    from notifications.services import preference_update

    set_rules(policy_team, people.alice, {"event": "candidate.new", "roles": ["admin", "member"], "channels": ["email"],
                                          "digest": "hourly"})
    preference_update(user=people.bob, changes={"digest": "daily"})
    notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(target, 17.0), now=NOW)
    kinds = {n.recipient.username: n.digest.digest_kind for n in Notification.objects.filter(digest_kind="")
             if n.digest is not None}
    assert kinds == {"alice": DigestKind.HOURLY, "bob": DigestKind.DAILY}


# --- the door ------------------------------------------------------------------------------------------


def test_the_door_suppresses_what_a_recipient_may_not_see(people: Any, policy_team: Any, api_client_for: Any) -> None:
    hidden = Target.objects.create(name="Secret", type=Target.SIDEREAL, ra=10.0, dec=10.0, epoch=2000.0)  # private, nobody's
    notify_event(event="candidate.new", teams=[policy_team.group], payload=candidate_payload(hidden, 17.0), now=NOW)
    row = Notification.objects.get()
    assert (row.status, row.last_error) == ("suppressed", "not shared with you")
    assert not notifications_for(user=people.alice, channel=None).exists()  # nothing of it shows
    assert api_client_for(people.alice).get(f"/api/notifications/{row.pk}/").status_code == 404


def test_a_batch_asks_the_door_once_per_person_with_the_same_answers(people: Any, policy_team: Any, target: Target,
                                                                    django_assert_max_num_queries: Any) -> None:
    from notifications.services import EventSpec, notify_events

    set_rules(policy_team, people.alice, {"event": "candidate.new", "roles": ["admin", "member"], "channels": ["inbox"]})
    targets = [Target.objects.create(name=f"T{i}", type=Target.SIDEREAL, ra=float(i), dec=0.0, epoch=2000.0) for i in range(12)]
    for t in targets[::2]:
        assign_perm("tom_targets.view_target", policy_team.group, t)
    specs = [EventSpec(event="candidate.new", teams=(policy_team.group,), payload=candidate_payload(t, 17.0) | {"candidate_id": t.pk})
             for t in targets]
    with django_assert_max_num_queries(40):
        notify_events(events=specs, now=NOW)
    by_target = {(n.payload["target_id"], n.recipient.username): n.status for n in Notification.objects.all()}
    assert by_target == {(t.pk, who): "sent" if i % 2 == 0 else "suppressed"
                         for i, t in enumerate(targets) for who in ("alice", "bob")}
    reasons = set(Notification.objects.filter(status="suppressed").values_list("last_error", flat=True))
    assert reasons == {"the target is not visible to the recipient"}


def test_proprietary_data_is_never_notified_to_another_team(people: Any, policy_team: Any, target: Target,
                                                            django_user_model: Any) -> None:
    from policies.services import data_record_ownership, team_create

    carol = django_user_model.objects.create_user(username="carol", email="carol@example.org", password="x" * 20)
    other = team_create(name="Team Q", slug="team-q", admins=[carol], now=NOW - timedelta(days=30))
    assign_perm("tom_targets.view_target", other.group, target)  # Q sees the target, not P's data on it
    datum = PhotometryReducedDatum.objects.create(target=target, timestamp=NOW - timedelta(hours=1), bandpass="r",
                                                  brightness=17.2, brightness_error=0.02)
    data_record_ownership(data=datum, team=policy_team.group, kind="photometry", now=NOW)

    adapters.data_notify(team=policy_team.group, target=target, data=[datum], facility="lsc-1m0-a")
    adapters.data_notify(team=other.group, target=target, data=[datum], facility="lsc-1m0-a")
    rows = {(n.recipient.username, n.status) for n in Notification.objects.filter(event="data.new")}
    assert rows == {("alice", "sent"), ("carol", "suppressed")}  # policy default rule: admins, in the inbox


def test_network_events_may_not_carry_references_to_owned_things(people: Any, target: Target) -> None:
    notify_event(event="facility.down", teams=[people.team], payload={"facility": "x", "target_id": target.pk}, now=NOW)
    assert {n.last_error for n in Notification.objects.all()} == {
        "facility.down is not a policy event, yet its payload refers to target_id"}
    assert set(Notification.objects.values_list("status", flat=True)) == {"suppressed"}


# --- the scheduling adapter ----------------------------------------------------------------------------


@pytest.fixture
def observing_request(policy_team: Any, target: Target) -> Any:
    from observatories.network import network_load
    from observatories.scheduling.models import ObservingRequest

    network_load()  # the migration loads it, but a transactional test's flush may have removed it

    return ObservingRequest.objects.create(
        target=target, team=policy_team.group, telescope_class="1m0", exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}],
        window_start=NOW, window_end=NOW + timedelta(days=2), priority=20.0, state="completed",
    )


def test_scheduling_events_reach_the_requests_team(people: Any, policy_team: Any, observing_request: Any) -> None:
    set_rules(policy_team, people.alice,
              *({"event": e, "roles": ["admin", "member"], "channels": ["email", "inbox"]}
                for e in ("request.completed", "request.failed", "request.replanned", "request.dispatched")))
    created = adapters.scheduling_notify(event="request.completed", request=observing_request, facility="lsc-1m0-a",
                                         twins_cancelled=2)
    assert got() == [("alice", "email", "pending"), ("alice", "inbox", "sent"), ("bob", "email", "pending"), ("bob", "inbox", "sent")]
    row = created[0]
    assert (row.event, row.urgent, row.dedupe_key) == ("request.completed", False, f"request.completed:{observing_request.pk}")
    assert row.payload["priority"] == 20.0 and row.payload["target_name"] == "Gaia26abc" and row.payload["twins_cancelled"] == 2
    assert adapters.scheduling_notify(event="request.completed", request=observing_request, facility="lsc-1m0-a") == []  # once

    failed = adapters.scheduling_notify(event="request.failed", request=observing_request, reason="too many failed copies")
    assert {n.urgent for n in failed} == {True}
    assert adapters.scheduling_notify(event="request.planned", request=observing_request, copies=2, p_total=0.97) == []
    replanned = adapters.scheduling_notify(event="request.copy_failed", request=observing_request, facility="lsc-1m0-a",
                                           reason="clouds", state="failed_weather")
    assert {n.event for n in replanned} == {"request.replanned"}


def test_a_copy_failing_twice_at_one_facility_is_two_events(people: Any, policy_team: Any, observing_request: Any) -> None:
    from observatories.models import Facility
    from observatories.scheduling.models import Dispatch

    set_rules(policy_team, people.alice, {"event": "request.replanned", "roles": ["admin"], "channels": ["inbox"]})
    facility = Facility.objects.get(code="lsc-1m0-a")
    for _ in range(2):
        Dispatch.objects.create(request=observing_request, facility=facility, state="failed_weather", window_start=NOW,
                                window_end=NOW + timedelta(hours=1), p_success=0.5, p_clear=0.8, duration_s=300)
        adapters.scheduling_notify(event="request.copy_failed", request=observing_request, facility="lsc-1m0-a",
                                   reason="clouds", state="failed_weather")
    assert Notification.objects.filter(event="request.replanned").count() == 2


def test_a_notification_failure_never_breaks_the_producers_transaction(people: Any, observing_request: Any,
                                                                       caplog: Any) -> None:
    from django.db import transaction

    with caplog.at_level(logging.ERROR, logger="notifications.adapters"), transaction.atomic():
        assert adapters.scheduling_notify(event="request.exploded", request=observing_request) == []
        observing_request.refresh_from_db()  # the transaction is still usable
    assert "scheduling event request.exploded" in caplog.text and "unknown event" in caplog.text


# --- policies, candidates and facilities ----------------------------------------------------------------


def test_policies_events_name_the_team(people: Any, policy_team: Any) -> None:
    created = adapters.policies_notify("policy.changed", [policy_team.group], {"team_id": policy_team.group_id, "version": 3,
                                                                               "by": "alice"})
    assert [(n.recipient.username, n.channel) for n in created] == [("alice", "inbox")]
    assert created[0].payload["team_name"] == "Team P"


def test_candidates_notify_reaches_a_team_or_a_person_once_per_candidate(people: Any, policy_team: Any, target: Target) -> None:
    set_rules(policy_team, people.alice, {"event": "candidate.new", "roles": ["member"], "channels": ["inbox"]})
    adapters.candidates_notify(event="candidate.new", team=policy_team.group, payload=candidate_payload(target, 17.0))
    adapters.candidates_notify(event="candidate.new", team=policy_team.group, payload={**candidate_payload(target, 17.0),
                                                                                       "match_name": "another filter"})
    assert got() == [("bob", "inbox", "sent")]


def test_a_facility_going_down_tells_the_teams_with_live_requests_there(people: Any, policy_team: Any, observing_request: Any,
                                                                        django_user_model: Any) -> None:
    from observatories.models import Facility, FacilityStatus
    from observatories.scheduling.models import Dispatch, ObservingRequest

    facility = Facility.objects.get(code="lsc-1m0-a")
    observing_request.state = "dispatched"
    observing_request.save()
    Dispatch.objects.create(request=observing_request, facility=facility, state="pending", window_start=NOW,
                            window_end=NOW + timedelta(hours=1), p_success=0.5, p_clear=0.8, duration_s=300)
    idle = Group.objects.create(name="Idle team")  # a request elsewhere: not told
    idle.user_set.add(django_user_model.objects.create_user(username="ivan", email="ivan@example.org", password="x" * 20))
    elsewhere = ObservingRequest.objects.create(target=observing_request.target, team=idle, telescope_class="1m0",
                                                exposures=[], window_start=NOW, window_end=NOW + timedelta(days=1))
    Dispatch.objects.create(request=elsewhere, facility=Facility.objects.get(code="coj-1m0-a"), state="pending",
                            window_start=NOW, window_end=NOW + timedelta(hours=1), p_success=0.5, p_clear=0.8, duration_s=300)
    FacilityStatus.objects.create(facility=facility, state="downtime", reason="dome fault", observed_at=NOW, fetched_at=NOW)

    assert adapters.facility_notify(facility=facility, old_state="available", new_state="weather", reason="clouds") == []
    down = adapters.facility_notify(facility=facility, old_state="available", new_state="downtime", reason="dome fault")
    assert {(n.recipient.username, n.event) for n in down} == {("alice", "facility.down")}  # policy default: admins, inbox
    assert down[0].payload["request_ids"] == [observing_request.pk] and down[0].payload["live_requests"] == 1
    assert adapters.facility_notify(facility=facility, old_state="available", new_state="downtime", reason="dome fault") == []
    up = adapters.facility_notify(facility=facility, old_state="downtime", new_state="available", reason="")
    assert {n.event for n in up} == {"facility.up"}


def test_by_default_policy_events_land_in_the_one_inbox(people: Any, policy_team: Any, settings: Any, client: Any) -> None:
    """Production settings route policies' events (here a policy change) through this app: one inbox, no second one."""
    from policies.models import InboxNotification

    settings.BATON_POLICIES = {**settings.BATON_POLICIES, "NOTIFY": "notifications.adapters.policies_notify"}
    set_rules(policy_team, people.alice, {"event": "candidate.new", "roles": ["admin"], "channels": ["inbox"]})
    assert got(event="policy.changed") == [("alice", "inbox", "sent")]
    assert not InboxNotification.objects.exists()
    client.force_login(people.alice)
    assert client.get("/inbox/").url == "/notifications/"
