"""Trigger rules: once per target per rule, never twice per alert; the request factory hook; the
microlensing trigger on a real light curve (OGLE-2008-BLG-092 from MulensModel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Group

from candidates.models import (
    Candidate,
    FiringStatus,
    RuleKind,
    TeamRequestDefaults,
    TriggerFiring,
    TriggerRule,
)
from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create, followup_request, trigger_evaluate, trigger_fire

from .conftest import JSON, generic_alert, json_body, mjd_to_datetime, ob08092_alerts

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def ingest(*alerts: dict[str, Any], broker: str | None = "b") -> Any:
    parsed = parse_alert_batch(body=json_body(*alerts), content_type=JSON, broker=broker)
    assert parsed.errors == []
    return alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW)


@pytest.fixture
def rule(team: Group) -> TriggerRule:
    TeamRequestDefaults.objects.create(team=team, defaults={"telescope_class": "1m0", "exposure_s": 120,
                                                            "filters": ["r"]})
    bright = filter_create(name="bright", team=team, predicates=[{"field": "mag", "op": "<", "value": 19}])
    return TriggerRule.objects.create(team=team, name="bright ones", filter=bright,
                                      request_defaults={"exposure_s": 300})


def test_a_rule_fires_once_per_target_and_never_twice_for_an_alert(
    rule: TriggerRule, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        first = ingest(generic_alert(alert_id="a1"), generic_alert(alert_id="a2", time="2026-06-01T05:00:00Z"))
    assert len(first.firing_ids) == 1  # two alerts of one target in one chunk: one firing
    assert len(callbacks) >= 1
    firing = TriggerFiring.objects.get()
    assert (firing.rule, firing.status) == (rule, FiringStatus.PENDING)
    assert firing.request_params == {"telescope_class": "1m0", "exposure_s": 300, "filters": ["r"]}

    later = ingest(generic_alert(alert_id="a3", time="2026-06-02T05:00:00Z"))
    assert later.firing_ids == [] and later.matches == 1  # matched again, but the target has its firing
    replay = ingest(generic_alert(alert_id="a1"))
    assert replay.stored == 0 and replay.firing_ids == []
    other = ingest(generic_alert(alert_id="b1", object_id="OBJ-9", ra=200.0))
    assert len(other.firing_ids) == 1 and TriggerFiring.objects.count() == 2


def test_without_a_factory_a_firing_is_recorded(rule: TriggerRule, settings: Any) -> None:
    settings.BATON_TRIGGER_REQUEST_FACTORY = ""
    ingest(generic_alert())
    firing = trigger_fire(firing_id=TriggerFiring.objects.get().pk)
    assert firing is not None and (firing.status, firing.request_ref) == (FiringStatus.RECORDED, "")
    again = trigger_fire(firing_id=firing.pk)  # idempotent
    assert again is not None and again.status == FiringStatus.RECORDED


def test_the_factory_makes_the_request_exactly_once(rule: TriggerRule, settings: Any, recorded_requests: Any) -> None:
    settings.BATON_TRIGGER_REQUEST_FACTORY = "tests.candidates.conftest.record_request"
    ingest(generic_alert())
    firing_id = TriggerFiring.objects.get().pk
    trigger_fire(firing_id=firing_id)
    trigger_fire(firing_id=firing_id)  # a redelivered task
    firing = TriggerFiring.objects.get()
    assert (firing.status, firing.request_ref) == (FiringStatus.REQUESTED, f"req-{firing_id}")
    assert [(r.team, r.target, r.params["exposure_s"]) for r in recorded_requests] == [("bulge-team", "OBJ-1", 300)]


def test_a_failing_factory_is_recorded_not_lost(rule: TriggerRule, settings: Any) -> None:
    settings.BATON_TRIGGER_REQUEST_FACTORY = "tests.candidates.conftest.failing_request"
    ingest(generic_alert())
    firing = trigger_fire(firing_id=TriggerFiring.objects.get().pk)
    assert firing is not None and firing.status == FiringStatus.FAILED
    assert firing.error == "RuntimeError: the scheduler is down"


def test_one_click_followup_is_once_per_team_and_target(team: Group, user: Any) -> None:
    from candidates.models import Match

    filter_create(name="all", team=team, predicates=[])
    ingest(generic_alert())
    match = Match.objects.get()
    firing, created = followup_request(match=match, team=team, user=user, now=NOW)
    assert created and firing.rule.kind == RuleKind.MANUAL and firing.requested_by == user
    again, created_again = followup_request(match=match, team=team, user=user, now=NOW)
    assert (again.pk, created_again) == (firing.pk, False)


@pytest.fixture
def microlensing_rule(team: Group) -> TriggerRule:
    bulge = filter_create(name="bulge", team=team, predicates=[{"field": "abs_galactic_latitude", "op": "<",
                                                                "value": 10}])
    return TriggerRule.objects.create(team=team, name="microlensing", kind=RuleKind.MICROLENSING, filter=bulge,
                                      min_priority=0.1)  # A(u0=0.52) ~ 2: a modest event peaks at priority ~0.16


def test_microlensing_trigger_fires_near_the_peak_of_a_real_event(
    microlensing_rule: TriggerRule, django_capture_on_commit_callbacks: Any, settings: Any, recorded_requests: Any
) -> None:
    """OGLE-2008-BLG-092: t0 = HJD 2455379.57 (MJD 55379.07), u0 = 0.52, tE = 17.9 d."""
    with django_capture_on_commit_callbacks() as callbacks:
        ingest(*ob08092_alerts(), broker=None)
    assert callbacks  # a microlensing evaluation was enqueued for the matched target
    target_id = Candidate.objects.get().target_id
    t0 = mjd_to_datetime(55379.07)

    far = trigger_evaluate(rule_id=microlensing_rule.pk, target_ids=[target_id], now=t0 + timedelta(days=60))
    assert far == []  # two months after the peak: priority ~0, not fired
    fired = trigger_evaluate(rule_id=microlensing_rule.pk, target_ids=[target_id], now=t0 - timedelta(days=1))
    (firing,) = fired
    assert firing.fit["ok"] and firing.fit["model"] == "baton.pspl" and firing.fit["version"] == "1.1"
    assert firing.fit["t0_mjd"] == pytest.approx(55379.07, abs=0.05)
    assert firing.fit["u0"] == pytest.approx(0.523, abs=0.01)
    assert firing.fit["tE_days"] == pytest.approx(17.94, abs=0.3)
    assert firing.priority == pytest.approx(0.16, abs=0.02)
    # Near the peak of an event this wide (u0 tE ~ 9 d) the cadence is about a day / ten samples of it.
    assert firing.cadence is not None and timedelta(hours=12) <= firing.cadence <= timedelta(days=1)
    assert firing.request_params["cadence_hours"] == pytest.approx(firing.cadence.total_seconds() / 3600)
    # Once per target: evaluating again fires nothing.
    assert trigger_evaluate(rule_id=microlensing_rule.pk, target_ids=[target_id], now=t0) == []

    settings.BATON_TRIGGER_REQUEST_FACTORY = "tests.candidates.conftest.record_request"
    trigger_fire(firing_id=firing.pk)
    assert recorded_requests[0].params["priority"] == firing.priority


def test_microlensing_trigger_waits_for_enough_points(microlensing_rule: TriggerRule) -> None:
    ingest(*ob08092_alerts(upto=5), broker=None)
    target_id = Candidate.objects.get().target_id
    assert trigger_evaluate(rule_id=microlensing_rule.pk, target_ids=[target_id], now=NOW) == []


def test_a_real_light_curve_replayed_alert_by_alert_fires_on_the_rise_not_on_the_baseline(
    microlensing_rule: TriggerRule,
) -> None:
    """OGLE-2014-BLG-0939 (MulensModel's OGLE light curve): 438 baseline points over four years, then the event.

    Replayed one alert per point through ingest, evaluated after every few points as alerts would trigger it. The
    reference is the fit to all the data (t0 = HJD 2456836.19, u0 = 0.95, tE = 22.5 d). Model 1.0 fired on the
    baseline 12 tE before the peak with tE = 1 +/- 70,000 d; a fit must now be constrained and rest on magnified
    points. Tolerances at the first firing, which comes on the rise (-0.8 tE): t0 within 0.75 tE, tE within a factor
    2.5, u0 within 0.8: before the peak u0 and tE are degenerate, and the early fit is smaller in u0 and longer in tE
    (u0 0.19 +/- 0.05, tE 53 +/- 8 d here), so the magnification it predicts is optimistic until the peak is seen.
    """
    import MulensModel

    from .conftest import MULENS_DATA

    microlensing_rule.min_priority = 0.0
    microlensing_rule.save()
    data = np.loadtxt(Path(MulensModel.__file__).parent / "data/photometry_files/OB140939/ob140939_OGLE.dat",
                      usecols=(0, 1, 2))
    assert MULENS_DATA.exists()
    t0_ref, u0_ref, te_ref = 2456836.19 - 2400000.5, 0.946, 22.47  # MJD
    first = None
    for i, (hjd, mag, err) in enumerate(data):
        mjd = float(hjd) - 2400000.5
        ingest({"alert_id": f"ob140939-{i}", "object_id": "OGLE-2014-BLG-0939", "ra": 269.3467, "dec": -31.1442,
                "mjd": mjd, "band": "I", "mag": float(mag), "mag_err": float(err), "broker": "ogle", "history": []},
               broker=None)
        if i < 10 or i % 4:
            continue
        target_id = Candidate.objects.filter(object_id="OGLE-2014-BLG-0939").values_list("target_id", flat=True).first()
        fired = trigger_evaluate(rule_id=microlensing_rule.pk, target_ids=[target_id], now=mjd_to_datetime(mjd))
        if fired:
            first = (mjd, fired[0])
            break
    assert first is not None, "the event was never followed"
    mjd, firing = first
    assert mjd > t0_ref - 1.5 * te_ref, f"fired {(mjd - t0_ref) / te_ref:+.1f} tE from the peak: on the baseline"
    assert mjd < t0_ref, "fired only after the peak"
    assert abs(firing.fit["t0_mjd"] - t0_ref) < 0.75 * te_ref
    assert te_ref / 2.5 < firing.fit["tE_days"] < te_ref * 2.5
    assert abs(firing.fit["u0"] - u0_ref) < 0.8
