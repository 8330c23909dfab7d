"""Trigger rules: firings from matches, the microlensing trigger, one-click follow-up requests.

A firing is unique per (rule, target) and per (rule, alert), so a rule asks for a target at
most once and never twice for the same alert. The request itself is made by
:func:`candidates.hooks.trigger_fired` (through ``BATON_TRIGGER_REQUEST_FACTORY``) in a Celery
task enqueued when the firing commits; once that commits, the rule's team hears ``trigger.fired``
(:func:`candidates.hooks.trigger_announce`, through ``BATON_CANDIDATES_FIRED_HOOK``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from candidates import hooks
from candidates.microlensing import (
    expected_peak_magnification,
    fit_pspl,
    followup_cadence,
    followup_priority,
)
from candidates.models import (
    Candidate,
    FiringStatus,
    LightCurvePoint,
    Match,
    RuleKind,
    TeamRequestDefaults,
    TriggerFiring,
    TriggerRule,
)

logger = logging.getLogger(__name__)

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


def to_mjd(moment: datetime) -> float:
    """UTC datetime -> MJD (days)."""
    return (moment - MJD_EPOCH).total_seconds() / 86400.0


def request_params_for(*, rule: TriggerRule) -> dict[str, Any]:
    """The team's request defaults overridden by the rule's."""
    try:
        team_defaults = dict(rule.team.request_defaults.defaults)
    except TeamRequestDefaults.DoesNotExist:
        team_defaults = {}
    return {**team_defaults, **dict(rule.request_defaults)}


def triggers_evaluate_enqueue(*, targets_by_rule: dict[int, set[int]]) -> None:
    """Enqueue microlensing evaluations of the given targets when the transaction commits."""
    from candidates.tasks import trigger_evaluate_task

    for rule_id, target_ids in targets_by_rule.items():
        trigger_evaluate_task.delay_on_commit(rule_id, sorted(target_ids))  # type: ignore[attr-defined]  # celery-types predates Celery 5.4


def microlensing_fit_target(*, target_id: int, now: datetime) -> tuple[Any, float, Any]:
    """Fit a point lens to the target's light curve: ``(fit, priority, cadence)`` at ``now``.

    Difference fluxes (nJy) are fitted, one data set per broker and band (each gets its own
    source and blend flux); time is MJD (UTC).
    """
    points = list(
        LightCurvePoint.objects.filter(target_id=target_id, flux__isnull=False, flux_err__isnull=False)
        .order_by("time")
        .values_list("time", "flux", "flux_err", "broker", "band")
    )
    if not points:
        fit = fit_pspl(t=[], flux=[], flux_err=[])
    else:
        t = np.array([to_mjd(p[0]) for p in points])
        fit = fit_pspl(
            t=t,
            flux=np.array([p[1] for p in points]),
            flux_err=np.array([p[2] for p in points]),
            dataset=[f"{p[3]}:{p[4]}" for p in points],
        )
    now_t = to_mjd(now)
    return fit, followup_priority(fit, now_t=now_t), followup_cadence(fit, now_t=now_t)


def _fit_record(fit: Any) -> dict[str, Any]:
    return {
        "model": fit.model, "version": fit.version, "ok": fit.ok, "reason": fit.reason, "t0_mjd": fit.t0,
        "u0": fit.u0, "tE_days": fit.tE, "t0_err": fit.t0_err, "u0_err": fit.u0_err, "tE_err": fit.tE_err,
        "chi2": fit.chi2, "dof": fit.dof, "n_points": fit.n_points, "delta_chi2": fit.delta_chi2,
        "peak_magnification": expected_peak_magnification(fit),
    }  # fmt: skip


def trigger_evaluate(*, rule_id: int, target_ids: Iterable[int], now: datetime | None = None) -> list[TriggerFiring]:
    """Evaluate a microlensing rule on targets that have no firing of it yet.

    Each target's light curve is fitted (:func:`microlensing_fit_target`); a usable fit whose
    follow-up priority reaches ``rule.min_priority`` fires, recording the fit, priority and
    cadence (also added to the request parameters as ``priority`` and ``cadence_hours``). A
    target whose fit is not good enough yet is evaluated again on its next matching alert.
    """
    now = now or timezone.now()
    rule = TriggerRule.objects.select_related("team").filter(pk=rule_id, active=True).first()
    if rule is None or rule.kind != RuleKind.MICROLENSING:
        return []
    wanted = set(target_ids) - set(
        TriggerFiring.objects.filter(rule=rule, target_id__in=list(target_ids)).values_list("target_id", flat=True)
    )
    fired: list[TriggerFiring] = []
    for target_id in sorted(wanted):
        fit, priority, cadence = microlensing_fit_target(target_id=target_id, now=now)
        if not fit.ok or priority < rule.min_priority:
            logger.info("microlensing rule %s: target %s not fired (%s, priority %.3f)", rule.pk, target_id,
                        fit.reason or "ok", priority)
            continue
        matches = Match.objects.filter(target_id=target_id)
        matches = matches.filter(filter_id=rule.filter_id) if rule.filter_id else matches.filter(region_id=rule.region_id)
        match = matches.select_related("candidate").order_by("-matched_at").first()
        latest = match.candidate if match else Candidate.objects.filter(target_id=target_id).order_by("-time").first()
        params = {**request_params_for(rule=rule), "priority": priority, "cadence_hours": cadence.total_seconds() / 3600}
        firing = _firing_create(
            rule=rule, target_id=target_id, candidate=latest, match=match, now=now, priority=priority,
            cadence=cadence, fit=_fit_record(fit), request_params=params,
        )
        if firing is not None:
            fired.append(firing)
    return fired


def _firing_create(*, rule: TriggerRule, target_id: int, candidate: Candidate | None, match: Match | None,
                   now: datetime, requested_by: Any = None, **values: Any) -> TriggerFiring | None:
    """Create a firing and enqueue its request, or None if the rule already fired for the target/alert."""
    from candidates.tasks import trigger_fire_task

    try:
        with transaction.atomic():
            firing = TriggerFiring.objects.create(
                rule=rule, target_id=target_id, candidate=candidate, match=match, created_at=now,
                requested_by=requested_by, **values,
            )
            trigger_fire_task.delay_on_commit(firing.pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    except IntegrityError:
        return None
    return firing


def followup_request(*, match: Match, team: Group, user: Any, now: datetime | None = None) -> tuple[TriggerFiring, bool]:
    """One click on the candidates page: ask for follow-up of the match's target for ``team``.

    Goes through the team's "manual" rule, so it is once per target like any rule; returns the
    firing and whether it was made now (False: the team had already asked).
    """
    now = now or timezone.now()
    rule, _ = TriggerRule.objects.get_or_create(
        team=team, kind=RuleKind.MANUAL, defaults={"name": "Follow-up requested from the candidates page"}
    )
    firing = _firing_create(
        rule=rule, target_id=match.target_id, candidate=match.candidate, match=match, now=now, requested_by=user,
        request_params=request_params_for(rule=rule),
    )
    if firing is not None:
        return firing, True
    return TriggerFiring.objects.get(rule=rule, target_id=match.target_id), False


def trigger_fire(*, firing_id: int) -> TriggerFiring | None:
    """Make the observing request of a pending firing (once: the status guards it, under a row lock)."""
    with transaction.atomic():
        firing = (
            TriggerFiring.objects.select_for_update(of=("self",))
            .select_related("rule__team", "target", "candidate")
            .filter(pk=firing_id)
            .first()
        )
        if firing is None or firing.status != FiringStatus.PENDING:
            return firing
        request = None
        try:
            with transaction.atomic():
                request = hooks.trigger_fired(firing=firing)
        except Exception as exc:  # the factory is someone else's code: record, do not lose the firing
            logger.exception("trigger firing %s: the request factory failed", firing.pk)
            firing.status = FiringStatus.FAILED
            firing.error = f"{type(exc).__name__}: {exc}"[:2000]
        firing.save(update_fields=["status", "request_ref", "error"])
        if firing.status == FiringStatus.REQUESTED and request is not None:
            # After the commit: the notice names a request that exists for everyone who reads it.
            transaction.on_commit(lambda: hooks.trigger_announce(firing=firing, request=request))
        return firing
