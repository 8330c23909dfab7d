"""A fired trigger rule becomes an observing request with the team's defaults, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tom_targets.models import Target

from candidates.hooks import trigger_fired
from candidates.models import FiringStatus, RuleKind, TeamRequestDefaults, TriggerFiring, TriggerRule
from observatories.scheduling.models import ObservingRequest, RequestState
from policies.services import team_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(user):
    group = team_create(name="Bulge team", admins=[user]).group
    TeamRequestDefaults.objects.create(
        team=group, defaults={"telescope_class": "1m0", "window_hours": 24, "success_probability": 0.9,
                              "exposures": [{"filter": "ip", "exposure_s": 60, "count": 3}]},
    )
    return group


def fire(rule: TriggerRule, **fields) -> TriggerFiring:
    target = Target.objects.create(name=f"KMT-2026-BLG-{TriggerFiring.objects.count():04d}", type=Target.SIDEREAL,
                                   ra=268.5, dec=-29.5)
    firing = TriggerFiring.objects.create(rule=rule, target=target, **fields)
    trigger_fired(firing=firing)
    firing.save()
    return firing


def test_match_rule_makes_one_request_with_the_team_defaults(team, django_capture_on_commit_callbacks):
    rule = TriggerRule.objects.create(team=team, name="bright bulge", kind=RuleKind.MATCH,
                                      request_defaults={"priority": 7})
    firing = fire(rule, request_params={**team.request_defaults.defaults, **rule.request_defaults})
    assert firing.status == FiringStatus.REQUESTED
    request = ObservingRequest.objects.get(pk=int(firing.request_ref))
    assert request.team == team
    assert request.target == firing.target
    assert request.state == RequestState.PENDING
    assert request.success_probability == 0.9
    assert request.priority == 7
    assert request.exposures == [{"filter": "ip", "exposure_s": 60.0, "count": 3}]
    assert request.window_end - request.window_start == timedelta(hours=24)
    assert request.source == f"trigger:{rule.pk}"


def test_microlensing_priority_and_cadence_shape_the_request(team):
    rule = TriggerRule.objects.create(team=team, name="high magnification", kind=RuleKind.MICROLENSING)
    params = {**team.request_defaults.defaults, "priority": 0.8, "cadence_hours": 2.0}
    firing = fire(rule, priority=0.8, cadence=timedelta(hours=2), request_params=params)
    request = ObservingRequest.objects.get(pk=int(firing.request_ref))
    assert request.priority == pytest.approx(1 + 9 * 0.8)
    assert request.cadence_period == timedelta(hours=2)
    assert request.cadence_visits == 12  # a 24 h window at a 2 h cadence


def test_a_refused_request_fails_the_firing_and_writes_no_request(team):
    rule = TriggerRule.objects.create(team=team, name="bad defaults", request_defaults={"telescope_class": "9m9"})
    target = Target.objects.create(name="nope", type=Target.SIDEREAL, ra=10.0, dec=-10.0)
    firing = TriggerFiring.objects.create(rule=rule, target=target, request_params={"telescope_class": "9m9"})
    from observatories.scheduling.services import RequestInvalid

    with pytest.raises(RequestInvalid, match="9m9"):
        trigger_fired(firing=firing)
    assert ObservingRequest.objects.count() == 0
