"""The contribution ledger: what a team gives the network, what it takes, its breaches, its priority.

Everything is counted in credits, one credit being one hour of telescope time:
a photometry point given to the network is worth ``LEDGER_WEIGHTS['photometry']``
credits (0.1 by default), a spectrum ``['spectra']`` (0.5), an hour of
telescope time used costs ``['hour']`` (1), a breach costs ``['breach']`` (10).
Only the last ``LEDGER_WINDOW_DAYS`` (365) count: old sins are forgiven.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from .. import clock
from ..models import BreachKind, LedgerEntry, LedgerKind, PolicyDecision
from ..selectors import ledger_balance, policies_setting
from .audit import decision_record

DEFAULT_WEIGHTS = {"photometry": 0.1, "spectra": 0.5, "hour": 1.0, "breach": 10.0}


def ledger_weight(name: str) -> float:
    return float({**DEFAULT_WEIGHTS, **policies_setting("LEDGER_WEIGHTS", {})}[name])


def ledger_add(
    *, team: Group, kind: str, amount: float, source_key: str, at: datetime, quantity: float = 0.0, reason: str = "",
    breach_kind: str = "", policy_version_id: int | None = None,
) -> tuple[LedgerEntry, bool]:
    """Add one ledger line, once per ``source_key``. Returns (entry, created)."""
    existing = LedgerEntry.objects.filter(source_key=source_key).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                team=team, kind=kind, amount=amount, quantity=quantity, source_key=source_key, at=at, reason=reason,
                breach_kind=breach_kind, policy_version_id=policy_version_id,
            )
    except IntegrityError:  # a concurrent caller recorded the same source first
        return LedgerEntry.objects.get(source_key=source_key), False
    return entry, True


def ledger_credit_shared(*, team: Group, kind: str, count: int, at: datetime, policy_version_id: int | None) -> LedgerEntry | None:
    """Credit a team for ``count`` data of ``kind`` given to the network (called when they are released)."""
    if count <= 0:
        return None
    entry, _ = ledger_add(
        team=team, kind=LedgerKind.DATA_SHARED, amount=count * ledger_weight(kind), quantity=count,
        source_key=f"shared:{team.pk}:{kind}:{at.isoformat()}", at=at, reason=f"{count} {kind} given to the network",
        policy_version_id=policy_version_id,
    )
    return entry


def breach_record(
    *, team: Group, breach_kind: str, reason: str, source_key: str, now: datetime | None = None,
    policy_version_id: int | None = None, detail: dict[str, Any] | None = None, notify: bool = True,
) -> LedgerEntry:
    """Record a breach of policy by ``team`` (once per ``source_key``), in the ledger and the audit trail."""
    from ..hooks import notify as notify_teams

    if breach_kind not in BreachKind.values:
        raise ValueError(f"unknown breach kind {breach_kind!r}")
    now = now or clock.now()
    entry, created = ledger_add(
        team=team, kind=LedgerKind.BREACH, breach_kind=breach_kind, amount=-ledger_weight("breach"), quantity=1,
        source_key=f"breach:{source_key}", at=now, reason=reason, policy_version_id=policy_version_id,
    )
    if created:
        decision_record(action=PolicyDecision.Action.BREACH, decision=breach_kind, team=team, policy_version_id=policy_version_id,
                        obj=entry, reason=reason, detail=detail, now=now)
        if notify:
            notify_teams("breach.recorded", [team], {"breach_kind": breach_kind, "reason": reason, "team_id": team.pk}, now=now)
    return entry


def team_priority_factor(*, team: Group, now: datetime | None = None) -> float:
    """The team's fair-share factor for the planner, from its ledger balance.

    ``1 + span * tanh(balance / scale)``: 1.0 for a team that gives as much as it takes,
    approaching ``1 + span`` for generous teams and ``1 - span`` for teams that only take
    or break the rules, but never beyond: with the default span of 0.5 the factor stays
    within [0.5, 1.5], so no team is starved (the worst still gets half its priority). ``PRIORITY_SCALE`` (50 credits) sets how
    fast it moves.
    """
    span = float(policies_setting("PRIORITY_SPAN", 0.5))
    scale = float(policies_setting("PRIORITY_SCALE", 50.0))
    balance = ledger_balance(team=team, now=now)
    return 1.0 + span * math.tanh(balance / scale)
