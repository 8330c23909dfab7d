"""Only a team's admins change its policy; each change is a new version; the audit names the deciding version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from policies.models import PolicyDecision, PolicyVersion
from policies.selectors import policy_in_force
from policies.services import PolicyForbidden, PolicyInvalid, allocation_check, policy_update, team_member_set

from .conftest import T0, document, rule

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_each_change_is_a_new_version_and_old_ones_stay(world):
    v2 = policy_update(team=world.a, by=world.alice, document=document(photometry=rule((), 10, "network")), comment="ten days", now=T0)
    v3 = policy_update(team=world.a, by=world.alice, document=document(photometry=rule((), 20, "public")), comment="twenty", now=T0 + timedelta(hours=1))
    assert [v.number for v in world.a.policy_versions.order_by("number")] == [1, 2, 3]
    assert (v2.created_by, v2.comment, v2.created_at) == (world.alice, "ten days", T0)
    assert PolicyVersion.objects.get(pk=v2.pk).document["sharing"]["photometry"] == {"partners": [], "proprietary_days": 10.0, "release_to": "network"}
    assert policy_in_force(team=world.a).number == 3 and policy_in_force(team=world.a).version_id == v3.pk


@pytest.mark.parametrize("who", ["bob", "carol", "olga", "root"])
def test_only_the_teams_admins_may_change_it(world, who):
    with pytest.raises(PolicyForbidden):
        policy_update(team=world.a, by=world.user(who), document=document())
    assert world.a.policy_versions.count() == 1


def test_a_promoted_member_may(world):
    team_member_set(team=world.a, user=world.bob, role="admin", by=world.alice)
    assert policy_update(team=world.a, by=world.bob, document=document()).number == 2


def test_bad_documents_change_nothing(world):
    for bad in (
        document(photometry=rule(("no-such-team",), 1, "network")),
        document(photometry=rule(("team-a",), 1, "network")),
        document(photometry=rule((), -1, "network")),
        {**document(), "notifications": [{"event": "no.such.event", "roles": ["admin"], "channels": ["inbox"]}]},
        {**document(), "notifications": [{"event": "claim.overlap", "roles": ["admin"], "channels": ["pigeon"]}]},
        {**document(), "notifications": [{"event": "claim.overlap", "roles": [], "users": [], "channels": ["inbox"]}]},
        {**document(), "notifications": [{"event": "claim.overlap", "users": [999999], "channels": ["inbox"]}]},
    ):
        with pytest.raises(PolicyInvalid):
            policy_update(team=world.a, by=world.alice, document=bad)
    assert world.a.policy_versions.count() == 1
    assert not PolicyDecision.objects.filter(action="policy", decision="changed").exists()


def test_the_audit_shows_which_version_made_each_decision(world):
    allocation = {"facility_class": "1m0", "facility_code": "", "semester": "2026A", "hours": 2}
    doc = {**document(), "time": {"overrun_action": "queue", "unallocated_action": "refuse", "allocations": [allocation]}}
    v2 = policy_update(team=world.a, by=world.alice, document=doc, now=T0)
    assert allocation_check(team=world.a.group, facility_class="1m0", hours=3, now=T0).action == "queue"
    v3 = policy_update(team=world.a, by=world.alice, document={**doc, "time": {**doc["time"], "overrun_action": "refuse"}}, now=T0)
    assert allocation_check(team=world.a.group, facility_class="1m0", hours=3, now=T0).action == "refuse"
    assert allocation_check(team=world.a.group, facility_class="2m0", hours=1, now=T0).action == "refuse"
    decisions = list(PolicyDecision.objects.filter(team=world.a.group, action="allocation").order_by("pk"))
    assert [(d.decision, d.policy_version_id) for d in decisions] == [("queue", v2.pk), ("refuse", v3.pk), ("refuse", v3.pk)]
    assert decisions[2].reason == "no allocation for 2m0 in 2026A"
    changes = PolicyDecision.objects.filter(team=world.a.group, action="policy").order_by("pk")
    assert [(d.decision, d.policy_version.number) for d in changes] == [("created", 1), ("changed", 2), ("changed", 3)]


# --- the API ------------------------------------------------------------------------------------


def test_api_put_patch_and_history(world):
    body = {"document": document(photometry=rule(("team-b",), 7, "network")), "comment": "via API"}
    assert api(world.bob).put("/api/teams/team-a/policy/", body, format="json").status_code == 403
    assert api(world.carol).put("/api/teams/team-a/policy/", body, format="json").status_code == 403
    created = api(world.alice).put("/api/teams/team-a/policy/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["number"] == 2 and created.json()["document"]["sharing"]["photometry"]["partners"] == ["team-b"]
    patched = api(world.alice).patch("/api/teams/team-a/policy/", {"document": {"sharing": {"spectra": rule((), 0, "public")}}}, format="json")
    assert patched.status_code == 201, patched.content
    doc = patched.json()["document"]
    assert doc["sharing"]["photometry"]["proprietary_days"] == 7 and doc["sharing"]["spectra"]["release_to"] == "public"
    bad = api(world.alice).patch("/api/teams/team-a/policy/", {"document": {"sharing": {"spectra": rule((), -3, "public")}}}, format="json")
    assert bad.status_code == 400
    history = api(world.bob).get("/api/teams/team-a/policy/versions/").json()
    assert [(v["number"], v["created_by"]) for v in history] == [(3, "alice_a"), (2, "alice_a"), (1, None)]
    old = api(world.bob).get("/api/teams/team-a/policy/versions/2/").json()
    assert old["document"]["sharing"]["spectra"]["release_to"] == "none"
    assert api(world.bob).get("/api/teams/team-a/policy/versions/9/").status_code == 404
    assert api(world.bob).get("/api/teams/nope/policy/").status_code == 404


def test_others_read_only_the_public_parts(world):
    member = api(world.bob).get("/api/teams/team-a/policy/").json()
    assert member["parts"] == ["sharing", "publication", "time", "notifications"]
    for outsider in (world.dave, world.olga):
        seen = api(outsider).get("/api/teams/team-a/policy/").json()
        assert seen["parts"] == ["sharing", "publication"]
        assert set(seen["document"]) == {"schema", "sharing", "publication"}


def test_audit_api_is_for_the_admins(world):
    assert api(world.bob).get("/api/teams/team-a/audit/").status_code == 403
    rows = api(world.alice).get("/api/teams/team-a/audit/?action=policy").json()["results"]
    assert [(r["decision"], r["policy_version"]) for r in rows] == [("created", 1)]


# --- the pages ----------------------------------------------------------------------------------


def test_admin_edits_the_policy_in_baton_pages(world, client):
    client.force_login(world.bob)
    refused = client.get("/teams/team-a/policy/edit/")  # TOM turns a refused page into the login page
    assert refused.status_code == 302 and refused.url.startswith("/accounts/login/")
    client.force_login(world.alice)
    form = client.get("/teams/team-a/policy/edit/")
    assert form.status_code == 200
    data = {
        "sharing-photometry-proprietary_days": "12", "sharing-photometry-release_to": "network", "sharing-photometry-partners": ["team-b"],
        "sharing-spectra-proprietary_days": "0", "sharing-spectra-release_to": "none",
        "sharing-requests-proprietary_days": "0", "sharing-requests-release_to": "network",
        "publication-guidelines": "Cite us.", "publication-claims_need_agreement": "on",
        "time-overrun_action": "queue", "time-unallocated_action": "allow",
        "allocations-TOTAL_FORMS": "1", "allocations-INITIAL_FORMS": "0",
        "allocations-0-facility_class": "1m0", "allocations-0-facility_code": "", "allocations-0-semester": "2026A", "allocations-0-hours": "25",
        "rules-TOTAL_FORMS": "1", "rules-INITIAL_FORMS": "0",
        "rules-0-event": "claim.overlap", "rules-0-roles": ["admin", "member"], "rules-0-channels": ["inbox"],
        "rules-0-conditions": "[]", "rules-0-quiet_start": "22:00", "rules-0-quiet_end": "07:00",
        "rules-0-quiet_timezone": "Europe/Berlin", "rules-0-quiet_action": "hold", "rules-0-digest": "immediate",
        "rules-0-urgent_bypasses_quiet": "on", "comment": "from the page",
    }
    saved = client.post("/teams/team-a/policy/edit/", data)
    assert saved.status_code == 302, saved.content.decode()[:3000]
    policy = policy_in_force(team=world.a)
    assert policy.number == 2 and policy.document.rule("photometry").partners == ("team-b",)
    assert policy.document.time.allocations[0].hours == 25
    assert policy.document.notifications[0].quiet_hours.timezone == "Europe/Berlin"
    bad = client.post("/teams/team-a/policy/edit/", {**data, "rules-0-quiet_timezone": "Mars/Olympus"})
    assert bad.status_code == 200 and "unknown time zone" in bad.content.decode()
    assert policy_in_force(team=world.a).number == 2
    history = client.get("/teams/team-a/policy/history/").content.decode()
    assert "v2" in history and "from the page" in history
    diff = client.get("/teams/team-a/policy/v2/").content.decode()
    assert "+      &quot;proprietary_days&quot;: 12.0" in diff

