"""Publication claims: overlaps detected and both teams told, agreement, release, expiry, contributors, breaches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from tom_targets.models import TargetExtra

from policies import access, clock
from policies.models import Claim, InboxNotification, LedgerEntry, PolicyDecision
from policies.regions import Subject, angular_separation_deg, overlap_reason
from policies.services import (
    PolicyForbidden,
    PolicyInvalid,
    claim_conflict_resolve,
    claim_consent,
    claim_contributors,
    claim_propose,
    claim_release,
    claims_expire_due,
    data_record_ownership,
    policy_update,
    publication_report,
    target_record_interest,
    usage_record,
)

from .conftest import T0, document, make_photometry, make_target, rule

pytestmark = pytest.mark.django_db

WEEK = timedelta(days=7)


def propose(world, team, by, **kwargs):
    defaults = {"title": "Paper", "exclusive_until": T0 + WEEK, "expires_at": T0 + 4 * WEEK, "now": T0}
    return claim_propose(team=team.group, by=by, **{**defaults, **kwargs})


def shared_target(world, *, agreement=False, name="AT claim"):
    """A target B follows and A may see (B shares its requests with the network at once)."""
    target = make_target(name, ra=268.53, dec=-30.47)
    target_record_interest(target=target, team=world.b.group, since=T0, now=T0)
    policy_update(team=world.b, by=world.carol, now=T0, document={
        **document(requests=rule((), 0, "network")), "publication": {"guidelines": "ask us", "claims_need_agreement": agreement}})
    return target


# --- geometry ------------------------------------------------------------------------------------


def test_separation_and_overlap_rules():
    assert angular_separation_deg(10, 0, 10, 0) == 0
    assert angular_separation_deg(0, 0, 180, 0) == pytest.approx(180)
    assert angular_separation_deg(0, 89.9, 180, 89.9) == pytest.approx(0.2)
    assert overlap_reason(Subject(target_id=1), Subject(target_id=1)) == "same target"
    assert overlap_reason(Subject(target_id=1), Subject(target_id=2)) is None
    assert overlap_reason(Subject(object_class="Microlensing"), Subject(object_class="microlensing")) == "same object class 'Microlensing'"
    assert overlap_reason(Subject(object_class="SN Ia"), Subject(object_class="microlensing")) is None
    bulge = Subject(ra=268.0, dec=-30.0, radius_deg=5)
    assert overlap_reason(bulge, Subject(ra=275.0, dec=-30.0, radius_deg=2)).startswith("cones overlap")
    assert overlap_reason(bulge, Subject(ra=290.0, dec=-30.0, radius_deg=2)) is None
    assert overlap_reason(Subject(target_id=3, ra=268.5, dec=-30.5), bulge).startswith("inside the claimed cone")
    assert overlap_reason(Subject(object_class="microlensing"), bulge) == "topics overlap"  # nothing tells them apart


# --- proposing and overlaps -------------------------------------------------------------------------


def test_a_claim_with_no_one_to_ask_is_active(world):
    target = make_target("AT own")
    target_record_interest(target=target, team=world.a.group, since=T0, now=T0)
    claim = propose(world, world.a, world.alice, target=target)
    assert claim.state == "active"
    assert [(t.from_state, t.to_state) for t in claim.transitions.all()] == [("", "proposed"), ("proposed", "active")]


def test_overlapping_claims_are_detected_and_both_teams_told(world):
    target = shared_target(world)
    first = propose(world, world.b, world.carol, title="B's paper", object_class="microlensing", ra=268.0, dec=-30.0, radius_deg=3)
    assert first.state == "active"
    second = propose(world, world.a, world.bob, title="A's paper", target=target)
    first.refresh_from_db()
    assert (first.state, second.state) == ("contested", "contested")
    conflicts = PolicyDecision.objects.filter(action="claim", decision="conflict").order_by("team_id")
    assert {(d.team_id, d.policy_version_id) for d in conflicts} == {
        (world.a.group_id, world.a.policy_versions.get(number=1).pk), (world.b.group_id, world.b.policy_versions.get(number=2).pk)}
    told = InboxNotification.objects.filter(event="claim.overlap")
    assert {n.recipient.username for n in told} == {"alice_a", "carol_b"}  # each team's admins (the default rule)
    assert {n.payload["claim_id"] for n in told} == {first.pk, second.pk}
    # Each team sees the other's claim now.
    assert access.claim_visible_to(user=world.carol, claim=second) and access.claim_visible_to(user=world.alice, claim=first)


def test_releasing_one_lets_the_other_settle(world):
    target = shared_target(world)
    first = propose(world, world.b, world.carol, target=target)
    second = propose(world, world.a, world.alice, target=target)
    with pytest.raises(PolicyForbidden):
        claim_release(claim=first, by=world.alice)
    claim_release(claim=second, by=world.alice, reason="B was first", now=T0 + timedelta(hours=1))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("active", "released")
    with pytest.raises(PolicyInvalid):
        claim_release(claim=second, by=world.alice)


def test_the_earlier_team_may_accept_an_overlap(world):
    target = shared_target(world)
    first = propose(world, world.b, world.carol, target=target)
    second = propose(world, world.a, world.alice, target=target)
    with pytest.raises(PolicyForbidden):
        claim_conflict_resolve(claim=second, other=first, by=world.alice)
    claim_conflict_resolve(claim=second, other=first, by=world.carol)
    assert set(Claim.objects.values_list("state", flat=True)) == {"active"}


def test_a_claim_on_another_teams_target_follows_its_rule(world):
    target = shared_target(world, agreement=True)
    claim = propose(world, world.a, world.alice, target=target)
    assert claim.state == "proposed"
    asked = InboxNotification.objects.get(event="claim.consent_needed")
    assert asked.recipient == world.carol and asked.payload["target_id"] == target.pk
    with pytest.raises(PolicyForbidden):
        claim_consent(claim=claim, team=world.b.group, by=world.dave, agree=True)  # a member, not an admin
    claim_consent(claim=claim, team=world.b.group, by=world.carol, agree=True)
    claim.refresh_from_db()
    assert claim.state == "active"
    declined = propose(world, world.a, world.alice, target=target, title="second try")
    claim_consent(claim=declined, team=world.b.group, by=world.carol, agree=False)
    declined.refresh_from_db()
    assert declined.state == "released" and declined.transitions.last().reason == "declined by Team B"


def test_who_may_claim_and_what(world):
    hidden = make_target("AT hidden")
    target_record_interest(target=hidden, team=world.b.group, since=T0, now=T0)
    with pytest.raises(PolicyInvalid, match="no such target"):
        propose(world, world.a, world.alice, target=hidden)
    with pytest.raises(PolicyForbidden):
        propose(world, world.a, world.carol, object_class="x")
    observer = world.olga
    from policies.services import team_member_set

    team_member_set(team=world.a, user=observer, role="observer", by=world.alice)
    with pytest.raises(PolicyForbidden):
        propose(world, world.a, observer, object_class="x")
    for bad in ({}, {"ra": 10.0, "object_class": "x"}, {"object_class": "x", "exclusive_until": T0 - WEEK},
                {"object_class": "x", "expires_at": T0 + timedelta(days=1)}, {"ra": 400.0, "dec": 0.0, "radius_deg": 1.0}):
        with pytest.raises(PolicyInvalid):
            propose(world, world.a, world.alice, **bad)
    assert not Claim.objects.exists()


# --- expiry -----------------------------------------------------------------------------------------


def test_an_expired_claim_releases_by_itself(world):
    target = shared_target(world)
    first = propose(world, world.b, world.carol, target=target, expires_at=T0 + 2 * WEEK)
    second = propose(world, world.a, world.alice, target=target)
    assert claims_expire_due(now=T0 + 2 * WEEK - timedelta(seconds=1)) == 0
    assert claims_expire_due(now=T0 + 2 * WEEK) == 1
    assert claims_expire_due(now=T0 + 2 * WEEK) == 0  # idempotent
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("expired", "active")
    expired = PolicyDecision.objects.get(action="claim", decision="expired")
    assert expired.policy_version == world.b.policy_versions.get(number=2)


# --- contributors and breaches ---------------------------------------------------------------------------


def test_contributors_are_listed_for_co_authorship(world):
    target = shared_target(world)
    TargetExtra.objects.create(target=target, key="classification", value="microlensing")
    for i in range(3):
        data_record_ownership(data=make_photometry(target, T0 + timedelta(hours=i), 15 + i), team=world.b.group,
                              kind="photometry", now=T0 + timedelta(hours=i))
    data_record_ownership(data=make_photometry(target, T0, 14.5, band="g"), team=world.a.group, kind="photometry", now=T0)
    usage_record(team=world.a.group, facility_code="lsc-1m0-a", facility_class="1m0", hours=1.5, kind="completed",
                 source_key="dispatch-1", now=T0, target=target)
    claim = propose(world, world.a, world.alice, object_class="microlensing", title="All bulge events")
    rows = [(c.team.name, c.data, c.hours) for c in claim_contributors(claim=claim)]
    assert rows == [("Team B", {"photometry": 3}, 0.0), ("Team A", {"photometry": 1}, 1.5)]


def test_publishing_on_another_teams_active_claim_is_a_breach(world):
    target = shared_target(world)
    claim = propose(world, world.b, world.carol, target=target)
    publication, violated = publication_report(team=world.a.group, by=world.bob, title="Our ATel", target=target,
                                               published_at=T0 + timedelta(days=1), now=T0 + timedelta(days=1))
    assert violated == [claim]
    breach = LedgerEntry.objects.get(kind="breach")
    assert (breach.team, breach.breach_kind, breach.amount) == (world.a.group, "claim_violation", -10.0)
    assert PolicyDecision.objects.get(action="breach").policy_version == world.b.policy_versions.get(number=2)
    _, after_window = publication_report(team=world.a.group, by=world.bob, title="Later", target=target,
                                         published_at=T0 + 2 * WEEK, now=T0 + 2 * WEEK)
    assert after_window == []


# --- visibility and the API ---------------------------------------------------------------------------


def test_claims_are_seen_as_the_door_says_and_hidden_targets_are_redacted(world):
    private = make_target("AT secret")
    target_record_interest(target=private, team=world.a.group, since=T0, now=T0)
    own = propose(world, world.a, world.alice, target=private, title="On our secret target")
    topic = propose(world, world.a, world.alice, object_class="kilonova", title="Kilonovae")
    assert set(access.claims_visible_to(user=world.bob)) == {own, topic}
    assert set(access.claims_visible_to(user=world.dave)) == {topic}  # the target is not his to see
    assert list(access.claims_visible_to(user=world.olga)) == []  # outsiders see no claims
    # A team whose claim overlaps sees the claim, but not the target.
    policy_update(team=world.a, by=world.alice, document=document(), now=T0)
    b_claim = propose(world, world.b, world.carol, ra=private.ra, dec=private.dec, radius_deg=1.0, title="Region")
    client = APIClient()
    client.force_authenticate(world.carol)
    with clock.moved(to=T0):
        body = client.get(f"/api/claims/{own.pk}/").json()
    assert (body["target"], body["target_name"], body["target_hidden"]) == (None, None, True)
    assert body["conflicts"][0]["other_claim"] == b_claim.pk


def test_claims_api_round_trip(world):
    target = shared_target(world, agreement=True)
    client = APIClient()
    client.force_authenticate(world.alice)
    with clock.moved(to=T0):
        made = client.post("/api/claims/", {"team": "team-a", "title": "Via API", "target": target.pk,
                                            "exclusive_until": (T0 + WEEK).isoformat(), "expires_at": (T0 + 2 * WEEK).isoformat()},
                           format="json")
        assert made.status_code == 201, made.content
        assert made.json()["state"] == "proposed" and made.json()["consents"] == [{"team": "Team B", "decision": "pending", "decided_at": None}]
        pk = made.json()["id"]
        assert client.post(f"/api/claims/{pk}/consent/", {"team": "team-b", "agree": True}, format="json").status_code == 403
        carol = APIClient()
        carol.force_authenticate(world.carol)
        agreed = carol.post(f"/api/claims/{pk}/consent/", {"team": "team-b", "agree": True}, format="json")
        assert agreed.status_code == 200 and agreed.json()["state"] == "active"
        assert client.get("/api/claims/?state=active").json()["count"] == 1
        assert client.get("/api/claims/?state=bogus").status_code == 400
        assert client.get(f"/api/claims/{pk}/contributors/").json() == []
        released = client.post(f"/api/claims/{pk}/release/", {"reason": "done"}, format="json")
        assert released.status_code == 200 and released.json()["state"] == "released"
        assert client.post(f"/api/claims/{pk}/release/", {}, format="json").status_code == 409  # it has ended
        outsider = APIClient()
        outsider.force_authenticate(world.olga)
        assert outsider.get(f"/api/claims/{pk}/").status_code == 404
        assert client.post("/api/claims/", {"team": "team-a", "title": "x", "exclusive_until": "2020-01-01T00:00:00Z",
                                            "expires_at": "2020-01-02T00:00:00Z", "object_class": "x"}, format="json").status_code == 400


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_expires_claims_in_a_real_worker(world, celery_worker_process):
    from policies.tasks import claims_expire_due_task

    now = clock.now()
    claim = claim_propose(team=world.a.group, by=world.alice, object_class="nova", title="Old claim",
                          exclusive_until=now - timedelta(minutes=5), expires_at=now - timedelta(minutes=1),
                          now=now - timedelta(days=1))
    assert claim.state == "active"
    result = claims_expire_due_task.apply_async()
    # The worker runs the task and records the outcome in the database (no result backend).
    from .conftest import wait_for

    wait_for(lambda: Claim.objects.get(pk=claim.pk).state == "expired", timeout=60)
    assert result.id and Claim.objects.get(pk=claim.pk).transitions.last().reason == "expired"
