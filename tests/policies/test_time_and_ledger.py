"""Telescope time (allocations, the usage ledger) and the contribution ledger with its bounded priority factor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from policies import clock
from policies.models import LedgerEntry, PolicyDecision, UsageEntry
from policies.selectors import ledger_balance, semester_bounds, semester_of, usage_hours
from policies.services import (
    PolicyInvalid,
    UsageConflict,
    allocation_check,
    breach_record,
    data_record_ownership,
    data_release_due,
    policy_update,
    team_priority_factor,
    usage_record,
)

from .conftest import T0, document, make_photometry, make_target, rule

pytestmark = pytest.mark.django_db


def with_time(world, *, overrun="refuse", unallocated="allow", allocations=()):
    doc = {**document(), "time": {"overrun_action": overrun, "unallocated_action": unallocated, "allocations": list(allocations)}}
    return policy_update(team=world.a, by=world.alice, document=doc, now=T0)


def alloc(hours, facility_class="1m0", code="", semester="2026A"):
    return {"facility_class": facility_class, "facility_code": code, "semester": semester, "hours": hours}


def test_semesters():
    assert semester_of(datetime(2026, 1, 31, 23, tzinfo=UTC)) == "2025B"
    assert semester_of(datetime(2026, 2, 1, tzinfo=UTC)) == "2026A"
    assert semester_of(datetime(2026, 7, 31, 23, tzinfo=UTC)) == "2026A"
    assert semester_of(datetime(2026, 8, 1, tzinfo=UTC)) == "2026B"
    assert semester_bounds("2025B") == (datetime(2025, 8, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


def test_allocation_allows_until_it_is_used_up_then_refuses(world):
    version = with_time(world, allocations=[alloc(10)])
    first = allocation_check(team=world.a.group, facility_class="1m0", hours=10, now=T0)
    assert (first.allowed, first.action, first.policy_version, first.remaining_hours) == (True, "allow", 2, 10)
    usage_record(team=world.a.group, facility_code="lsc-1m0-a", facility_class="1m0", hours=7.5, kind="completed", source_key="d1", now=T0)
    refused = allocation_check(team=world.a.group, facility_class="1m0", hours=3, now=T0)
    assert (refused.allowed, refused.action) == (False, "refuse")
    assert refused.reason == "7.50 h used + 3.00 h asked > 10.00 h allocated on 1m0 in 2026A"
    assert refused.policy_version_id == version.pk
    assert allocation_check(team=world.a.group, facility_class="1m0", hours=2.5, now=T0).allowed
    # Another semester starts afresh, with no allocation: unallocated_action says allow.
    later = allocation_check(team=world.a.group, facility_class="1m0", hours=50, now=datetime(2026, 8, 2, tzinfo=UTC))
    assert (later.action, later.reason) == ("allow", "no allocation for 1m0 in 2026B")
    told = [n for n in world.alice.baton_inbox.all() if n.event == "allocation.overrun"]
    assert len(told) == 1 and told[0].payload["action"] == "refuse"


def test_overrun_is_queued_when_the_policy_says_so(world):
    with_time(world, overrun="queue", unallocated="refuse", allocations=[alloc(5), alloc(1, code="ogg-2m0-a", facility_class="2m0")])
    assert allocation_check(team=world.a.group, facility_class="1m0", hours=6, now=T0).action == "queue"
    assert allocation_check(team=world.a.group, facility_class="2m0", hours=2, now=T0, facility_code="ogg-2m0-a").action == "queue"
    assert allocation_check(team=world.a.group, facility_class="2m0", hours=2, now=T0).action == "refuse"  # no class-wide one
    assert allocation_check(team=world.a.group, facility_class="0m4", hours=1, now=T0).action == "refuse"


def test_a_cancelled_dispatch_charges_what_ran_and_both_kinds_count(world):
    with_time(world, allocations=[alloc(2)])
    usage_record(team=world.a.group, facility_code="coj-1m0-a", facility_class="1m0", hours=0.5, kind="cancelled", source_key="d-c", now=T0)
    usage_record(team=world.a.group, facility_code="cpt-1m0-a", facility_class="1m0", hours=1.0, kind="completed", source_key="d-d", now=T0)
    assert usage_hours(team=world.a.group, semester="2026A", facility_class="1m0") == 1.5
    assert allocation_check(team=world.a.group, facility_class="1m0", hours=0.5, now=T0).allowed
    assert not allocation_check(team=world.a.group, facility_class="1m0", hours=0.6, now=T0).allowed


def test_usage_is_idempotent_by_source_key(world):
    args = {"team": world.a.group, "facility_code": "lsc-1m0-a", "facility_class": "1m0", "hours": 1.25, "kind": "completed",
            "source_key": "dispatch-42", "now": T0}
    first = usage_record(**args)
    again = usage_record(**args)
    assert first.pk == again.pk and UsageEntry.objects.count() == 1
    assert LedgerEntry.objects.get(kind="time_used").amount == -1.25
    with pytest.raises(UsageConflict):
        usage_record(**{**args, "hours": 2.0})
    for bad in ({"kind": "lost"}, {"hours": -1.0}, {"source_key": ""}):
        with pytest.raises(PolicyInvalid):
            usage_record(**{**args, "source_key": "other", **bad})
    assert UsageEntry.objects.count() == 1


def test_crossing_an_allocation_is_recorded_once(world):
    with_time(world, allocations=[alloc(2)])
    for i, hours in enumerate((1.5, 1.0, 1.0)):
        usage_record(team=world.a.group, facility_code="x", facility_class="1m0", hours=hours, kind="completed", source_key=f"d{i}", now=T0)
    overruns = PolicyDecision.objects.filter(action="allocation", decision="overrun")
    assert [d.reason for d in overruns] == ["usage 2.50 h passed the 2.00 h allocated on 1m0 in 2026A"]


def test_usage_api_is_for_members(world):
    with_time(world, allocations=[alloc(4)])
    usage_record(team=world.a.group, facility_code="x", facility_class="1m0", hours=1, kind="completed", source_key="u1", now=T0)
    client = APIClient()
    client.force_authenticate(world.bob)
    body = client.get("/api/teams/team-a/usage/?semester=2026A").json()
    assert body["allocations"] == [{"facility_class": "1m0", "facility_code": "", "semester": "2026A", "hours": 4.0,
                                    "used_hours": 1.0, "remaining_hours": 3.0}]
    assert [e["source_key"] for e in body["entries"]] == ["u1"]
    assert client.get("/api/teams/team-a/usage/?semester=26A").status_code == 400
    client.force_authenticate(world.dave)
    assert client.get("/api/teams/team-a/usage/").status_code == 403


# --- the contribution ledger ------------------------------------------------------------------------


def test_giving_data_to_the_network_earns_credit_when_it_is_released(world):
    policy_update(team=world.a, by=world.alice, now=T0, document=document(photometry=rule((), 10, "network"), spectra=rule((), 0, "network")))
    target = make_target("AT ledger")
    points = [make_photometry(target, T0 + timedelta(minutes=i), 16 + i / 10) for i in range(5)]
    data_record_ownership(data=points, team=world.a.group, kind="photometry", now=T0)
    assert ledger_balance(team=world.a.group, now=T0) == 0
    data_release_due(now=T0 + timedelta(days=10, minutes=10))
    data_release_due(now=T0 + timedelta(days=11))  # nothing new
    shared = LedgerEntry.objects.get(kind="data_shared")
    assert (shared.quantity, shared.amount) == (5, pytest.approx(0.5))
    assert PolicyDecision.objects.get(action="release").reason == "5 photometry released to the network"


def test_data_recorded_past_its_release_date_is_a_withheld_breach(world):
    policy_update(team=world.a, by=world.alice, now=T0, document=document(photometry=rule((), 0, "network")))
    target = make_target("AT late")
    late = make_photometry(target, T0 - timedelta(days=5), 16.0)
    data_record_ownership(data=late, team=world.a.group, kind="photometry", now=T0)
    breach = LedgerEntry.objects.get(kind="breach")
    assert breach.breach_kind == "withheld" and breach.amount == -10
    on_time = make_photometry(target, T0 - timedelta(hours=47), 16.1)
    archive = make_photometry(target, T0 - timedelta(days=400), 16.2)
    data_record_ownership(data=on_time, team=world.a.group, kind="photometry", now=T0)
    data_record_ownership(data=archive, team=world.a.group, kind="photometry", now=T0, backfill=True)
    assert LedgerEntry.objects.filter(kind="breach").count() == 1


def test_priority_factor_is_bounded_so_nobody_is_starved(world):
    assert team_priority_factor(team=world.a.group, now=T0) == 1.0
    for i in range(100):
        breach_record(team=world.a.group, breach_kind="withheld", reason="x", source_key=f"b{i}", now=T0, notify=False)
    worst = team_priority_factor(team=world.a.group, now=T0)
    assert 0.5 <= worst < 0.51  # the floor: half priority, never zero
    for i in range(50):
        usage_record(team=world.b.group, facility_code="x", facility_class="1m0", hours=0.0, kind="cancelled", source_key=f"z{i}", now=T0)
    LedgerEntry.objects.create(team=world.b.group, kind="data_shared", amount=10_000, source_key="gift", at=T0)
    assert 1.49 < team_priority_factor(team=world.b.group, now=T0) <= 1.5
    # Old sins are forgiven once they leave the window.
    assert team_priority_factor(team=world.a.group, now=T0 + timedelta(days=366)) == 1.0


def test_ledger_api_is_open_to_the_network(world):
    usage_record(team=world.a.group, facility_code="x", facility_class="1m0", hours=2, kind="completed", source_key="l1", now=T0)
    client = APIClient()
    client.force_authenticate(world.dave)
    body = client.get("/api/teams/team-a/ledger/").json()
    assert body["balance"] == -2 and body["totals"]["time_used"] == -2 and body["priority_factor"] == pytest.approx(0.98, abs=0.001)
    client.force_authenticate(world.olga)
    assert client.get("/api/teams/team-a/ledger/").status_code == 403


def test_a_group_that_is_not_a_team_is_refused_time_but_its_usage_is_booked(world):
    from django.contrib.auth.models import Group

    stray = Group.objects.create(name="not a team")
    decision = allocation_check(team=stray, facility_class="1m0", hours=1, now=T0)
    assert (decision.action, decision.policy_version) == ("refuse", None)
    entry = usage_record(team=stray, facility_code="x", facility_class="1m0", hours=1, kind="completed", source_key="s1", now=T0)
    assert entry.policy_version is None and ledger_balance(team=stray, now=T0) == -1


def test_the_schedulers_hooks_call_these_services(world, settings):
    hooks = pytest.importorskip("observatories.scheduling.hooks")
    settings.BATON_SCHEDULING_HOOKS = {
        "team_factor": "policies.services.team_priority_factor",
        "allocation_check": "policies.services.allocation_check",
        "usage_record": "policies.services.usage_record",
        "notify": "policies.hooks.scheduling_notify",
    }
    with_time(world, allocations=[alloc(1, semester=semester_of(clock.now()))])
    assert hooks.team_factor(team=world.a.group) == 1.0
    assert hooks.allocation_check(team=world.a.group, telescope_class="1m0", hours=2).action == "refuse"
    hooks.usage_record(team=world.a.group, facility_code="lsc-1m0-a", telescope_class="1m0", hours=0.5, kind="completed",
                       source_key="dispatch-9")
    hooks.usage_record(team=world.a.group, facility_code="lsc-1m0-a", telescope_class="1m0", hours=0.5, kind="completed",
                       source_key="dispatch-9")  # the scheduler may report twice
    assert UsageEntry.objects.get().hours == 0.5
    assert hooks.team_factor(team=world.a.group) < 1.0
