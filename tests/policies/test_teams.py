"""Teams: members and roles, the audience groups, team pages and API, system checks, demo data."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.checks import run_checks
from django.core.management import call_command
from rest_framework.test import APIClient

from policies.models import Audience, PolicyDecision, Team
from policies.selectors import audience_group, team_members, team_role_of
from policies.services import PolicyForbidden, PolicyInvalid, team_create, team_member_remove, team_member_set

pytestmark = pytest.mark.django_db


def names(group: Group) -> set[str]:
    return set(group.user_set.values_list("username", flat=True))


def test_roles_and_membership(world):
    assert [(u.username, r) for u, r in team_members(team=world.a)] == [("alice_a", "admin"), ("bob_a", "member")]
    with pytest.raises(PolicyForbidden):
        team_member_set(team=world.a, user=world.olga, role="member", by=world.bob)
    team_member_set(team=world.a, user=world.olga, role="observer", by=world.alice)
    assert team_role_of(user=world.olga, team=world.a) == "observer"
    with pytest.raises(PolicyInvalid):
        team_member_set(team=world.a, user=world.alice, role="member", by=world.alice)  # the last admin
    with pytest.raises(PolicyInvalid):
        team_member_remove(team=world.a, user=world.alice, by=world.alice)
    with pytest.raises(PolicyInvalid):
        team_member_set(team=world.a, user=world.olga, role="king", by=world.alice)
    team_member_remove(team=world.a, user=world.olga, by=world.olga)  # a member may leave
    assert team_role_of(user=world.olga, team=world.a) is None
    team_member_set(team=world.a, user=world.dave, role="member", by=world.root)  # site admins manage membership
    assert PolicyDecision.objects.filter(team=world.a.group, action="membership").count() == 4  # bob, olga in and out, dave


def test_audience_groups_follow_membership_however_it_changes(world, django_user_model):
    network, public = audience_group(audience=Audience.NETWORK), audience_group(audience=Audience.PUBLIC)
    assert names(network) == {"alice_a", "bob_a", "carol_b", "dave_b"}
    assert names(public) == {"alice_a", "bob_a", "carol_b", "dave_b", "olga", "root"}
    world.olga.groups.add(world.a.group)  # TOM's or Django's admin way, not Baton's
    assert "olga" in names(network)
    world.a.group.user_set.remove(world.olga)
    assert "olga" not in names(network)
    world.b.group.user_set.clear()
    assert names(network) == {"alice_a", "bob_a"}
    newcomer = django_user_model.objects.create_user(username="newcomer", password="x")
    assert "newcomer" in names(public)
    newcomer.is_active = False
    newcomer.save()
    assert "newcomer" not in names(public)


def test_creating_teams(world):
    with pytest.raises(PolicyInvalid):
        team_create(name="Team A", admins=[world.olga])
    with pytest.raises(PolicyInvalid):
        team_create(name="Public", admins=[world.olga])
    with pytest.raises(PolicyInvalid):
        team_create(name="Lonely")
    with pytest.raises(PolicyForbidden):
        team_create(name="Mine", admins=[world.olga], by=world.olga)
    team = team_create(name="Team C", admins=[world.olga], by=world.root)
    assert team.slug == "team-c" and team.policy_versions.get().number == 1
    client = APIClient()
    client.force_authenticate(world.olga)
    assert client.post("/api/teams/", {"name": "D", "admins": [world.olga.pk]}, format="json").status_code == 403
    client.force_authenticate(world.root)
    made = client.post("/api/teams/", {"name": "Team D", "admins": [world.olga.pk]}, format="json")
    assert made.status_code == 201 and made.json()["slug"] == "team-d"
    assert client.post("/api/teams/", {"name": "Team E", "admins": [10**8]}, format="json").status_code == 400


def test_team_api(world):
    client = APIClient()
    client.force_authenticate(world.bob)
    teams = client.get("/api/teams/").json()
    assert [(t["slug"], t["my_role"], t["member_count"], t["policy_version"]) for t in teams] == [
        ("team-a", "member", 2, 1), ("team-b", None, 2, 1)]
    assert [m["username"] for m in client.get("/api/teams/team-a/members/").json()] == ["alice_a", "bob_a"]
    assert client.get("/api/teams/team-b/members/").status_code == 403
    assert client.post("/api/teams/team-a/members/", {"username": "olga"}, format="json").status_code == 403
    client.force_authenticate(world.alice)
    added = client.post("/api/teams/team-a/members/", {"username": "olga", "role": "observer"}, format="json")
    assert added.status_code == 200 and added.json()["role"] == "observer"
    assert client.post("/api/teams/team-a/members/", {"username": "nobody"}, format="json").status_code == 404
    assert client.delete(f"/api/teams/team-a/members/{world.olga.pk}/").status_code == 204
    assert client.delete(f"/api/teams/team-a/members/{world.olga.pk}/").status_code == 404  # no longer a member
    assert client.get("/api/teams/nope/").status_code == 404


def test_team_pages(world, client):
    client.force_login(world.alice)
    listing = client.get("/teams/").content.decode()
    assert "Team A" in listing and "Team B" in listing
    page = client.get("/teams/team-a/").content.decode()
    assert "bob_a" in page and "Add a member" in page
    assert client.post("/teams/team-a/", {"username": "olga", "role": "member"}).status_code == 302
    assert team_role_of(user=world.olga, team=world.a) == "member"
    client.force_login(world.dave)
    other = client.get("/teams/team-a/").content.decode()
    assert "bob_a" not in other and "Only the team's members see its member list." in other
    for path in ("/teams/team-a/policy/", "/teams/team-a/policy/history/", "/teams/team-a/policy/v1/", "/teams/team-a/ledger/",
                 "/claims/", "/claims/new/", "/inbox/"):
        assert client.get(path).status_code == 200, path
    assert client.get("/teams/team-a/audit/").status_code == 302  # refused: TOM sends refusals to the login page
    client.force_login(world.alice)
    audit = client.get("/teams/team-a/audit/?action=membership").content.decode()
    assert "olga: not a member -&gt; member" in audit


def test_system_checks(settings):
    assert [e.id for e in run_checks() if e.id.startswith("policies.")] == []
    settings.BATON_POLICIES = {**settings.BATON_POLICIES, "NOTIFICATION_CHANNELS": {"inbox": "policies.nope.Inbox", "x": "policies.hooks.notify"}}
    settings.BATON_POLICIES["NOTIFY"] = "policies.nope.notify"
    settings.TARGET_PERMISSIONS_ONLY = True
    assert sorted(e.id for e in run_checks() if e.id.startswith("policies.")) == [
        "policies.E001", "policies.E001", "policies.E002", "policies.E003"]


def test_demo_data_loads_twice_without_change(db):
    out = io.StringIO()
    call_command("baton_demo", stdout=out)
    call_command("baton_demo", stdout=out)
    assert sorted(Team.objects.values_list("slug", flat=True)) == ["bulge-watch", "nearby-sne"]
    bulge = Team.objects.get(slug="bulge-watch")
    assert [(u.username, r) for u, r in team_members(team=bulge)] == [("demo", "admin")]
    assert bulge.policy_versions.count() == 2 and bulge.group.baton_claims.count() == 1
