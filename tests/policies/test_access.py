"""The door, branch by branch: targets, data, requests, claims; and the query agrees with the decision."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from guardian.shortcuts import assign_perm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from policies import access
from policies.models import DataOwnership, PolicyDecision
from policies.selectors import policies_in_force
from policies.services import data_record_ownership, data_release_due, policy_update, target_record_interest

from .conftest import T0, document, make_photometry, make_target, rule

pytestmark = pytest.mark.django_db


def set_policy(world, team, **sharing):
    admin = world.alice if team == world.a else world.carol
    return policy_update(team=team, by=admin, document=document(**sharing), now=T0)


def owned_point(world, team, target, at=T0, mag=17.0):
    point = make_photometry(target, at, mag)
    data_record_ownership(data=point, team=team.group, kind="photometry", now=at)
    return point


# --- shared_decision: one test per line of the rule ----------------------------------------------


def decide(world, viewer, *, days=30, release_to="network", partners=(), taken=T0, now=T0):
    set_policy(world, world.a, photometry=rule(partners, days, release_to))
    owner = policies_in_force()[world.a.group_id]
    mine = access.team_group_ids_of(user=viewer)
    return access.shared_decision(mine=mine, owner=owner, kind="photometry", taken_at=taken, now=now)


def test_own_team_sees_at_once(world):
    decision = decide(world, world.bob, release_to="none")
    assert decision.allowed and decision.reason == "own team"
    assert decision.policy_version_id == world.a.policy_versions.order_by("-number").first().pk


def test_partner_sees_at_once(world):
    decision = decide(world, world.dave, partners=("team-b",), release_to="none")
    assert decision.allowed and decision.reason == "partner of team-a for photometry"


def test_public_release_after_the_period(world):
    assert decide(world, world.olga, release_to="public", now=T0 + timedelta(days=30)).allowed
    refused = decide(world, world.olga, release_to="public", now=T0 + timedelta(days=29, hours=23))
    assert not refused.allowed and refused.reason.startswith("photometry of team-a is proprietary until 2026-03-31 12:00")


def test_network_release_reaches_team_members_only(world):
    assert decide(world, world.dave, now=T0 + timedelta(days=30)).allowed
    refused = decide(world, world.olga, now=T0 + timedelta(days=30))
    assert not refused.allowed and refused.reason == "photometry of team-a is shared with network teams only"


def test_not_shared_is_refused_with_the_version(world):
    refused = decide(world, world.dave, release_to="none", now=T0 + timedelta(days=3650))
    assert not refused.allowed and refused.reason == "photometry of team-a is not shared"
    assert refused.team_id == world.a.group_id and refused.policy_version_id is not None


# --- targets ---------------------------------------------------------------------------------


def test_target_rules(world):
    private = make_target("AT private")
    assert not access.target_access(user=AnonymousUser(), target=private)
    assert access.target_access(user=world.root, target=private).reason == "superuser"
    private.permissions = Target.Permissions.OPEN
    private.save()
    assert access.target_access(user=world.olga, target=private).reason == "an open target (TOM)"
    other = make_target("AT granted")
    assign_perm("tom_targets.view_target", world.olga, other)
    assert access.target_access(user=world.olga, target=other).reason == "granted in TOM"
    inactive = world.bob
    inactive.is_active = False
    inactive.save()
    assert not access.target_access(user=inactive, target=private)


def test_target_follows_the_requests_rule_of_its_team(world):
    target = make_target("AT followed")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    set_policy(world, world.a, requests=rule((), 10, "network"))
    assert access.target_access(user=world.bob, target=target, now=T0)
    assert not access.target_access(user=world.dave, target=target, now=T0 + timedelta(days=9))
    assert access.target_access(user=world.dave, target=target, now=T0 + timedelta(days=10))
    assert not access.target_access(user=world.olga, target=target, now=T0 + timedelta(days=100))
    visible = access.targets_visible_to(user=world.dave, now=T0 + timedelta(days=10))
    assert list(visible) == [target]


def test_target_is_visible_through_visible_data(world):
    target = make_target("AT data only")
    owned_point(world, world.a, target)
    set_policy(world, world.a, photometry=rule((), 5, "public"))
    assert not access.target_access(user=world.olga, target=target, now=T0 + timedelta(days=4))
    # The door decides from the policy at once; TOM's grant follows when the release task runs.
    decision = access.target_access(user=world.olga, target=target, now=T0 + timedelta(days=5))
    assert decision.allowed and decision.reason == "photometry on it is shared"
    data_release_due(now=T0 + timedelta(days=5))
    assert access.target_access(user=world.olga, target=target, now=T0 + timedelta(days=5)).reason == "granted in TOM"


def test_refused_target_read_is_audited_with_the_version(world):
    target = make_target("AT audited")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    version = set_policy(world, world.a)
    assert not access.target_visible_to(user=world.dave, target=target, now=T0)
    row = PolicyDecision.objects.get(action="read", decision="deny")
    assert (row.team_id, row.policy_version_id, row.user, row.object_id) == (world.a.group_id, version.pk, world.dave, str(target.pk))
    assert row.reason == "requests of team-a is not shared"


# --- data ------------------------------------------------------------------------------------


def test_datum_rules(world):
    target = make_target("AT datum")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    set_policy(world, world.a, requests=rule((), 0, "public"), photometry=rule(("team-b",), 30, "public"))
    mine = owned_point(world, world.a, target, mag=17.1)
    survey = make_photometry(target, T0, 18.0, band="g")
    data_record_ownership(data=survey, team=None, kind="photometry", now=T0)
    tom_only = make_photometry(target, T0, 19.0, band="i")
    assert access.datum_access(user=world.bob, datum=mine, now=T0).reason == "own team"
    assert access.datum_access(user=world.dave, datum=mine, now=T0).reason == "partner of team-a for photometry"
    assert not access.datum_access(user=world.olga, datum=mine, now=T0)
    assert access.datum_access(user=world.olga, datum=mine, now=T0 + timedelta(days=30))
    assert access.datum_access(user=world.olga, datum=survey, now=T0).reason == "public survey data"
    assert not access.datum_access(user=world.olga, datum=tom_only, now=T0)
    assign_perm("tom_dataproducts.view_photometryreduceddatum", world.olga, tom_only)
    assert access.datum_access(user=world.olga, datum=tom_only, now=T0).reason == "TOM's own permission (no team owns it)"
    assert access.datum_access(user=world.root, datum=tom_only).reason == "superuser"
    assert not access.datum_access(user=AnonymousUser(), datum=survey)
    visible = access.reduced_data_visible_to(user=world.olga, target=target, now=T0)
    assert set(visible) == {survey, tom_only}


def test_datum_on_an_invisible_target_is_refused(world):
    target = make_target("AT hidden")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    survey = make_photometry(target, T0, 18.0)
    data_record_ownership(data=survey, team=None, kind="photometry", now=T0)
    decision = access.datum_access(user=world.olga, datum=survey, now=T0)
    assert not decision and decision.reason == "its target is not visible"
    assert list(access.reduced_data_visible_to(user=world.olga, target=target, now=T0)) == []


# --- requests and claims ---------------------------------------------------------------------


def test_requests_rule(world):
    set_policy(world, world.a, requests=rule(("team-b",), 0, "none"))
    q = access.requests_visible_q(user=world.dave, now=T0, time_field="acquired_at")
    target = make_target("AT q")
    owned_point(world, world.a, target)
    assert DataOwnership.objects.filter(q).count() == 1  # any model with team and a time field works
    assert DataOwnership.objects.filter(access.requests_visible_q(user=world.olga, time_field="acquired_at")).count() == 0
    assert DataOwnership.objects.filter(access.requests_visible_q(user=world.root)).count() == 1
    assert DataOwnership.objects.filter(access.requests_visible_q(user=AnonymousUser())).count() == 0
    assert access.request_access(user=world.dave, team_id=world.a.group_id, created_at=T0).reason == "partner of team-a for requests"
    assert not access.request_access(user=world.olga, team_id=world.a.group_id, created_at=T0)
    assert not access.request_access(user=world.olga, team_id=world.olga.pk + 10_000, created_at=T0)


# --- the query and the decision agree, for any policy and any time ----------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    days=st.sampled_from([0, 1, 30]),
    release_to=st.sampled_from(["none", "network", "public"]),
    partner=st.booleans(),
    offset_days=st.integers(min_value=-2, max_value=40),
)
def test_query_agrees_with_decision(world_for_hypothesis, days, release_to, partner, offset_days):
    world, points = world_for_hypothesis
    policy_update(team=world.a, by=world.alice, now=T0,
                  document=document(photometry=rule(("team-b",) if partner else (), days, release_to)))
    now = T0 + timedelta(days=offset_days)
    for viewer in (world.bob, world.dave, world.olga):
        by_query = set(access.reduced_data_visible_to(user=viewer, model=PhotometryReducedDatum, now=now))
        by_decision = {p for p in points if access.datum_access(user=viewer, datum=p, now=now)}
        assert by_query == by_decision


@pytest.fixture
def world_for_hypothesis(world):
    target = make_target("AT property")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    target_record_interest(target=target, team=world.b.group, since=T0, now=T0)
    policy_update(team=world.b, by=world.carol, now=T0, document=document(requests=rule((), 0, "public")))
    points = [owned_point(world, world.a, target, at=T0 + timedelta(days=d), mag=15 + d) for d in (0, 5, 20)]
    return world, points


def test_a_policy_change_never_withdraws_grants_it_did_not_make(world):
    """The candidate ingest grants a matched team the target directly; the projection leaves that alone."""
    target = make_target("AT ingested")
    assign_perm("tom_targets.view_target", world.b.group, target)  # as candidates' _grant_view does
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    set_policy(world, world.a, requests=rule(("team-b",), 0, "none"))
    set_policy(world, world.a, requests=rule((), 0, "none"))  # B is no longer a partner
    assert access.target_access(user=world.dave, target=target, now=T0).reason == "granted in TOM"
    # A grant the projection made is withdrawn when the policy no longer justifies it.
    other = make_target("AT partner only")
    target_record_interest(target=other, team=world.a.group, since=T0, now=T0)
    set_policy(world, world.a, requests=rule(("team-b",), 0, "none"))
    assert access.target_access(user=world.dave, target=other, now=T0).reason == "granted in TOM"
    set_policy(world, world.a, requests=rule((), 0, "none"))
    assert not access.target_access(user=world.dave, target=other, now=T0)


def test_interests_in_bulk(world):
    from policies.services import target_interests_record

    targets = [make_target(f"AT bulk {i}") for i in range(3)]
    set_policy(world, world.a, requests=rule(("team-b",), 0, "none"))
    pairs = [(t.pk, world.a.group_id) for t in targets] + [(targets[0].pk, world.olga.pk + 10_000)]
    assert target_interests_record(pairs=pairs, source="filter", now=T0) == 3
    assert target_interests_record(pairs=pairs, source="filter", now=T0) == 3  # idempotent
    assert set(access.targets_visible_to(user=world.dave, now=T0)) == set(targets)
    assert world.bob.has_perm("tom_targets.change_target", targets[1])
