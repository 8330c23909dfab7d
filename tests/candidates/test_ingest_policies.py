"""Ingest meets the policies: a broker's photometry on TOM's own light-curve plot for those who may see the
target, the matched teams' interest in their targets, and ``trigger.fired`` announced to the rule's team."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import RequestFactory
from guardian.shortcuts import get_groups_with_perms
from tom_dataproducts.models import PhotometryReducedDatum
from tom_dataproducts.templatetags.dataproduct_extras import photometry_for_target

from candidates.models import FiringStatus, TriggerFiring, TriggerRule
from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create, trigger_fire
from policies.access import reduced_data_visible_to, target_visible_to
from policies.models import DataOwnership, PolicyTargetGrant, TargetInterest
from policies.selectors import policy_in_force
from policies.services import policy_update, team_create, team_member_set

from .conftest import JSON, generic_alert, json_body

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
# Magnitudes that plotly.js (inlined in the page) does not contain, so a page shows a point or it does not.
MAGS = (17.4321, 17.3456)  # the alert's own point and its history point


def ingest(*alerts: dict[str, Any]) -> Any:
    parsed = parse_alert_batch(body=json_body(*alerts), content_type=JSON, broker="b")
    assert parsed.errors == []
    return alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW)


def shown(text: str) -> set[float]:
    return {m for m in MAGS if re.search(rf"(?<![\d.]){re.escape(str(m))}(?!\d)", text)}


@pytest.fixture
def people(django_user_model: Any) -> Any:
    def make(name: str) -> Any:
        return django_user_model.objects.create_user(username=name, password="a long test password 42",
                                                     email=f"{name}@example.org")

    class People:
        admin, member, outsider = make("pi"), make("student"), make("olga")

    team = team_create(name="Bulge team", slug="bulge", admins=[People.admin], now=NOW - timedelta(days=30))
    team_member_set(team=team, user=People.member, role="member", by=People.admin)
    People.team = team  # type: ignore[attr-defined]
    return People


def alert_with_history(**overrides: Any) -> dict[str, Any]:
    history = [{"source_id": "h1", "time": "2026-05-31T03:04:05Z", "band": "r", "mag": MAGS[1], "mag_err": 0.05}]
    return generic_alert(**{"mag": MAGS[0], "history": history, **overrides})


def test_broker_points_show_on_toms_plot_for_the_matched_team_and_nobody_else(people: Any, client: Any) -> None:
    filter_create(name="bright", team=people.team.group, predicates=[{"field": "mag", "op": "<", "value": 18}])
    result = ingest(alert_with_history())
    assert (result.stored, result.points, result.matches) == (1, 2, 1)
    datums = PhotometryReducedDatum.objects.filter(source_name="b")
    target = datums.first().target
    assert sorted(datums.values_list("brightness", flat=True)) == sorted(MAGS)

    # Ownership: public survey data, as data_record_ownership(team=None) records it.
    ct = ContentType.objects.get_for_model(PhotometryReducedDatum)
    owned = DataOwnership.objects.filter(content_type=ct)
    assert sorted(owned.values_list("object_id", "team", "kind", "target")) == sorted(
        (d.pk, None, "photometry", target.pk) for d in datums)
    assert {o.acquired_at for o in owned} == {d.timestamp for d in datums}
    # The team follows the target: interest, change and view permissions, the projection's record.
    interest = TargetInterest.objects.get()
    assert (interest.target, interest.team, interest.source, interest.since) == (target, people.team.group, "filter", NOW)
    assert set(get_groups_with_perms(target, attach_perms=True)[people.team.group]) == {"view_target", "change_target"}
    assert not PolicyTargetGrant.objects.exists()  # the team's own grant is not the projection's to withdraw

    # TOM's light-curve plot (its own template tag, as the target page renders it) and the target page.
    def plot_for(user: Any) -> set[float]:
        request = RequestFactory().get(f"/targets/{target.pk}/")
        request.user = user
        return shown(photometry_for_target({"request": request}, target)["plot"])

    for user in (people.admin, people.member):
        assert plot_for(user) == set(MAGS), user.username
        client.force_login(user)
        page = client.get(f"/targets/{target.pk}/")
        assert page.status_code == 200 and shown(page.content.decode()) == set(MAGS), user.username
        assert set(reduced_data_visible_to(user=user, target=target).values_list("brightness", flat=True)) == set(MAGS)
    assert not target_visible_to(user=people.outsider, target=target, audit=False)
    client.force_login(people.outsider)
    page = client.get(f"/targets/{target.pk}/")
    assert page.status_code in (302, 403, 404) and shown(page.content.decode()) == set()  # TOM: to the login page
    assert reduced_data_visible_to(user=people.outsider, target=target).count() == 0

    # A replay adds nothing twice; a second alert on the target adds its own point, owned likewise.
    ingest(alert_with_history())
    again = ingest(alert_with_history(alert_id="a-2", time="2026-06-02T03:04:05Z", mag=17.9))
    assert (again.stored, again.points, again.new_targets) == (1, 1, 0)
    assert owned.all().count() == datums.all().count() == 3 and TargetInterest.objects.count() == 1


def test_a_team_sharing_its_requests_at_once_shows_its_targets_to_partners_and_the_network(
    people: Any, django_user_model: Any
) -> None:
    partner_admin = django_user_model.objects.create_user(username="pa", password="a long test password 42")
    partner = team_create(name="Partner", slug="partner", admins=[partner_admin], now=NOW - timedelta(days=30))
    document = policy_in_force(team=people.team).document.to_json()
    document["sharing"]["requests"] = {"partners": ["partner"], "proprietary_days": 0, "release_to": "network"}
    policy_update(team=people.team, by=people.admin, document=document, now=NOW - timedelta(days=1))
    filter_create(name="bright", team=people.team.group, predicates=[{"field": "mag", "op": "<", "value": 18}])
    ingest(alert_with_history())
    target = TargetInterest.objects.get().target
    from policies.selectors import audience_group

    network = audience_group(audience="network")
    grants = set(PolicyTargetGrant.objects.values_list("group", flat=True))
    assert grants == {partner.group_id, network.pk}
    assert target_visible_to(user=partner_admin, target=target, audit=False)
    assert not target_visible_to(user=people.outsider, target=target, audit=False)  # in no team


# --- trigger.fired ----------------------------------------------------------------------------------


def make_request(*, firing: Any) -> Any:
    """A request factory making a real ObservingRequest for the firing (the scheduler's planning left out)."""
    from observatories.scheduling.models import ObservingRequest

    return ObservingRequest.objects.create(
        target=firing.target, team=firing.rule.team, telescope_class="1m0",
        exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}], window_start=NOW,
        window_end=NOW + timedelta(days=2), priority=5.0, state="submitted",
    )


def test_a_firing_that_made_its_request_is_announced_to_the_rules_team(
    people: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from notifications.models import Notification

    settings.BATON_TRIGGER_REQUEST_FACTORY = "tests.candidates.test_ingest_policies.make_request"
    settings.BATON_CANDIDATES_FIRED_HOOK = "notifications.adapters.scheduling_notify"
    document = policy_in_force(team=people.team).document.to_json()
    document["notifications"] = [{"event": "trigger.fired", "roles": ["admin", "member"], "channels": ["inbox"]}]
    policy_update(team=people.team, by=people.admin, document=document, now=NOW - timedelta(days=1))
    bright = filter_create(name="bright", team=people.team.group, predicates=[{"field": "mag", "op": "<", "value": 18}])
    rule = TriggerRule.objects.create(team=people.team.group, name="follow bright", filter=bright)
    ingest(alert_with_history(object_id="SN 2026abc"))
    firing_id = TriggerFiring.objects.get(rule=rule).pk

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        firing = trigger_fire(firing_id=firing_id)
    assert firing is not None and firing.status == FiringStatus.REQUESTED and len(callbacks) == 1
    sent = Notification.objects.filter(event="trigger.fired").select_related("recipient").order_by("recipient__username")
    assert [(n.recipient.username, n.channel, n.status) for n in sent] == [("pi", "inbox", "sent"),
                                                                           ("student", "inbox", "sent")]
    payload = sent[0].payload
    assert (payload["rule_name"], payload["firing_id"], payload["alert_id"], payload["target_name"],
            payload["request_id"]) == ("follow bright", firing_id, "a-1", "SN 2026abc", int(firing.request_ref))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        trigger_fire(firing_id=firing_id)  # a redelivered task: the status guard, no second notice
    assert callbacks == [] and Notification.objects.filter(event="trigger.fired").count() == 2


def test_a_firing_without_a_request_is_not_announced(people: Any, settings: Any,
                                                      django_capture_on_commit_callbacks: Any) -> None:
    from notifications.models import Notification

    settings.BATON_TRIGGER_REQUEST_FACTORY = "tests.candidates.conftest.failing_request"
    bright = filter_create(name="bright", team=people.team.group, predicates=[{"field": "mag", "op": "<", "value": 18}])
    TriggerRule.objects.create(team=people.team.group, name="follow bright", filter=bright)
    ingest(alert_with_history())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        firing = trigger_fire(firing_id=TriggerFiring.objects.get().pk)
    assert firing is not None and firing.status == FiringStatus.FAILED and callbacks == []
    assert not Notification.objects.filter(event="trigger.fired").exists()
