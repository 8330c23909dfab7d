"""Telescope-time allocations: the check before a request, the usage ledger after a dispatch.

An allocation gives a team hours of one facility class (e.g. "1m0") in one
semester (LCO's: ``YYYYA`` Feb-Jul, ``YYYYB`` Aug-Jan), optionally of one
facility only (it then applies when the caller names that facility). Usage is
charged by the scheduler when a dispatch completes or is cancelled (the hours
that ran). A request that would overrun is refused or queued, as the team's
policy says (``time.overrun_action``); a class with no allocation gets
``time.unallocated_action``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from .. import clock
from ..models import LedgerKind, PolicyDecision, UsageEntry, UsageKind
from ..selectors import TeamPolicy, policies_in_force, semester_of, usage_hours
from .audit import decision_record
from .errors import PolicyInvalid, UsageConflict
from .ledger import ledger_add, ledger_weight

EPSILON_HOURS = 1e-9  # float sums of many dispatches must not turn an exact fit into an overrun


@dataclass(frozen=True)
class AllocationDecision:
    """The answer of :func:`allocation_check`. ``policy_version`` is the deciding version's number."""

    allowed: bool
    action: str  # "allow", "refuse" or "queue"
    reason: str
    policy_version: int | None
    policy_version_id: int | None = None
    remaining_hours: float | None = None


def _matching(policy: TeamPolicy, *, semester: str, facility_class: str, facility_code: str) -> list[Any]:
    return [
        a for a in policy.document.time.allocations
        if a.semester == semester and a.facility_class == facility_class and a.facility_code in ("", facility_code)
    ]


def allocation_check(*, team: Group, facility_class: str, hours: float, now: datetime | None = None,
                     facility_code: str = "", record: bool = True) -> AllocationDecision:
    """Whether ``team`` may book ``hours`` more of ``facility_class`` (at ``facility_code``, if named) now.

    Every matching allocation of the current semester must have room. The decision is
    recorded in the audit trail with the policy version (unless ``record=False``), and a
    refusal or a queueing is announced to the team (``allocation.overrun``).
    """
    from ..hooks import notify

    now = now or clock.now()
    if hours < 0:
        raise PolicyInvalid("hours must not be negative")
    policy = policies_in_force().get(team.pk)
    if policy is None:  # fail closed, without breaking the planner's loop over requests
        reason = f"{team} is not a Baton team: no policy allows it telescope time"
        if record:
            decision_record(action=PolicyDecision.Action.ALLOCATION, decision="refuse", team=team, object_type="allocation",
                            object_id=f"{facility_class}:{facility_code}", reason=reason, now=now)
        return AllocationDecision(allowed=False, action="refuse", reason=reason, policy_version=None)
    semester = semester_of(now)
    matching = _matching(policy, semester=semester, facility_class=facility_class, facility_code=facility_code)
    remaining: float | None = None
    if not matching:
        action = policy.document.time.unallocated_action
        reason = f"no allocation for {facility_class} in {semester}"
    else:
        action, reason = "allow", ""
        for allocation in matching:
            used = usage_hours(team=team, semester=semester, facility_class=facility_class, facility_code=allocation.facility_code)
            left = allocation.hours - used
            remaining = left if remaining is None else min(remaining, left)
            label = f"{facility_class}{'@' + allocation.facility_code if allocation.facility_code else ''} in {semester}"
            if hours > left + EPSILON_HOURS:
                action = policy.document.time.overrun_action
                reason = f"{used:.2f} h used + {hours:.2f} h asked > {allocation.hours:.2f} h allocated on {label}"
                break
            reason = f"{left - hours:.2f} h of {allocation.hours:.2f} h left on {label} after this"
    decision = AllocationDecision(allowed=action == "allow", action=action, reason=reason, policy_version=policy.number,
                                  policy_version_id=policy.version_id, remaining_hours=remaining)
    if record:
        decision_record(action=PolicyDecision.Action.ALLOCATION, decision=action, team=team, policy_version_id=policy.version_id,
                        object_type="allocation", object_id=f"{facility_class}:{facility_code}", reason=reason,
                        detail={"hours": hours, "semester": semester}, now=now)
        if action != "allow":
            notify("allocation.overrun", [team], {"facility_class": facility_class, "facility_code": facility_code,
                                                  "hours": hours, "action": action, "reason": reason}, now=now)
    return decision


def proposal_for(*, team: Group, facility: Any, at: datetime | None = None) -> str:
    """The team's proposal at ``facility`` in the semester of ``at``: the proposal its allocation for that facility
    names (an allocation naming the facility before one for its whole class); "" when none names one."""
    at = at or clock.now()
    policy = policies_in_force().get(team.pk)
    if policy is None:
        return ""
    matching = _matching(policy, semester=semester_of(at), facility_class=facility.telescope_class,
                         facility_code=facility.code)
    for allocation in sorted(matching, key=lambda a: a.facility_code == ""):
        if allocation.proposal:
            return str(allocation.proposal)
    return ""


def usage_record(*, team: Group, facility_code: str, facility_class: str, hours: float, kind: str, source_key: str,
                 now: datetime | None = None, target: Any = None) -> UsageEntry:
    """Charge ``hours`` of a completed or cancelled dispatch to ``team``: idempotent by ``source_key``.

    Calling twice with the same values returns the first entry; reusing a key with other
    values raises :class:`UsageConflict`. The hours go to the contribution ledger (time
    used); crossing an allocation is recorded and announced (``allocation.overrun``).
    """
    from ..hooks import notify

    now = now or clock.now()
    if kind not in UsageKind.values:
        raise PolicyInvalid(f"kind must be one of {', '.join(UsageKind.values)}")
    if hours < 0:
        raise PolicyInvalid("hours must not be negative")
    if not source_key or len(source_key) > 200:
        raise PolicyInvalid("source_key must be 1-200 characters")
    wanted = {"team_id": team.pk, "facility_code": facility_code, "facility_class": facility_class, "hours": float(hours), "kind": kind}
    existing = UsageEntry.objects.filter(source_key=source_key).first()
    if existing is not None:
        return _same_or_conflict(existing, wanted)
    policy = policies_in_force().get(team.pk)  # None for a group that is not a team: usage is still booked
    semester = semester_of(now)
    try:
        with transaction.atomic():
            before = {a: usage_hours(team=team, semester=semester, facility_class=facility_class, facility_code=a.facility_code)
                      for a in (_matching(policy, semester=semester, facility_class=facility_class, facility_code=facility_code)
                                if policy else [])}
            entry = UsageEntry.objects.create(team=team, facility_code=facility_code, facility_class=facility_class,
                                              hours=hours, kind=kind, source_key=source_key, semester=semester, at=now,
                                              target=target, policy_version_id=policy.version_id if policy else None)
            if hours > 0:
                ledger_add(team=team, kind=LedgerKind.TIME_USED, amount=-hours * ledger_weight("hour"), quantity=hours,
                           source_key=f"usage:{source_key}", at=now, policy_version_id=policy.version_id if policy else None,
                           reason=f"{hours:.2f} h on {facility_code} ({kind})")
            for allocation, used in before.items():
                if used <= allocation.hours + EPSILON_HOURS < used + hours:
                    reason = f"usage {used + hours:.2f} h passed the {allocation.hours:.2f} h allocated on {facility_class} in {semester}"
                    decision_record(action=PolicyDecision.Action.ALLOCATION, decision="overrun", team=team,
                                    policy_version_id=policy.version_id if policy else None, obj=entry, reason=reason, now=now)
                    notify("allocation.overrun", [team], {"facility_class": facility_class, "facility_code": facility_code,
                                                          "hours": hours, "action": "overrun", "reason": reason}, now=now)
    except IntegrityError:  # the same dispatch reported concurrently: the other call won
        return _same_or_conflict(UsageEntry.objects.get(source_key=source_key), wanted)
    return entry


def _same_or_conflict(existing: UsageEntry, wanted: dict[str, Any]) -> UsageEntry:
    have = {"team_id": existing.team_id, "facility_code": existing.facility_code, "facility_class": existing.facility_class,
            "hours": existing.hours, "kind": existing.kind}
    if have != wanted:
        raise UsageConflict(f"source_key {existing.source_key!r} was recorded with {have}, not {wanted}")
    return existing
