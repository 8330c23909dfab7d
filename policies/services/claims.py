"""Publication claims: propose, agree, release, resolve, expire; overlaps detected; contributors listed.

States: ``proposed`` (waiting for the agreement of a target's owning team,
when that team's policy asks for it), ``active``, ``contested`` (an open
overlap with another team's claim), and the ends ``released`` and ``expired``.
A claim settles by itself: contested while an overlap is open, else proposed
while an agreement is pending, else active. Both teams of an overlap are told
(``claim.overlap``); the ``policies.claims_expire_due`` beat task expires
claims past ``expires_at``, which may let the claims they contested settle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from tom_targets.models import Target

from .. import access, clock
from ..models import (
    CLAIM_OPEN_STATES,
    BreachKind,
    Claim,
    ClaimConflict,
    ClaimConsent,
    ClaimState,
    ClaimTransition,
    ConsentDecision,
    DataOwnership,
    PolicyDecision,
    Publication,
    Role,
    TargetInterest,
    UsageEntry,
)
from ..regions import Subject, overlap_reason, subject_of, targets_in_subject
from ..selectors import policies_in_force, policies_setting, team_of, team_role_of
from .audit import decision_record
from .errors import PolicyConflict, PolicyForbidden, PolicyInvalid
from .ledger import breach_record

TERMINAL = (ClaimState.RELEASED, ClaimState.EXPIRED)


def _class_key() -> str:
    return str(policies_setting("TARGET_CLASS_EXTRA", "classification"))


def claim_subject(claim: Claim) -> Subject:
    return subject_of(target=claim.target, object_class=claim.object_class, ra=claim.ra, dec=claim.dec,
                      radius_deg=claim.radius_deg, class_key=_class_key())


def _acting_role(*, user: Any, group: Group) -> str | None:
    team = team_of(group=group)
    return team_role_of(user=user, team=team) if team else None


def _transition(claim: Claim, to_state: str, *, by: Any, reason: str, now: datetime) -> None:
    if claim.state == to_state:
        return
    ClaimTransition.objects.create(claim=claim, from_state=claim.state, to_state=to_state,
                                   by=by if getattr(by, "is_authenticated", False) else None, reason=reason[:300], at=now)
    claim.state = to_state
    claim.updated_at = now
    claim.save(update_fields=["state", "updated_at"])


def _announce(claim: Claim, event: str, teams: list[Group], now: datetime, **extra: Any) -> None:
    from ..hooks import notify

    notify(event, teams, {"claim_id": claim.pk, "title": claim.title, "state": claim.state, "team_id": claim.team_id, **extra}, now=now)


def _settle(claim: Claim, *, by: Any, reason: str, now: datetime) -> None:
    """Put an open claim in the state its conflicts and consents call for."""
    if claim.state in TERMINAL:
        return
    open_conflicts = ClaimConflict.objects.filter(Q(claim_a=claim) | Q(claim_b=claim), resolved_at__isnull=True).exists()
    pending = claim.consents.filter(decision=ConsentDecision.PENDING).exists()
    wanted = ClaimState.CONTESTED if open_conflicts else ClaimState.PROPOSED if pending else ClaimState.ACTIVE
    before = claim.state
    _transition(claim, wanted, by=by, reason=reason, now=now)
    if before != claim.state:
        _announce(claim, "claim.state_changed", [claim.team], now, previous=before)


def _owner_groups(target: Target) -> set[int]:
    """Teams that own a target: they follow it, or own data on it."""
    owners = set(TargetInterest.objects.filter(target=target).values_list("team_id", flat=True))
    owners |= set(DataOwnership.objects.filter(target=target, team__isnull=False).values_list("team_id", flat=True).distinct())
    return owners


def _validate(*, title: str, target: Target | None, object_class: str, ra: float | None, dec: float | None,
              radius_deg: float | None, exclusive_until: datetime, expires_at: datetime, now: datetime) -> None:
    if not title.strip():
        raise PolicyInvalid("a claim needs a title")
    if target is None and not object_class.strip() and radius_deg is None:
        raise PolicyInvalid("a claim needs a target, an object class or a sky cone")
    cone = (ra, dec, radius_deg)
    if any(v is not None for v in cone) and not all(v is not None for v in cone):
        raise PolicyInvalid("a sky cone needs ra, dec and radius_deg")
    if ra is not None and not (0 <= ra < 360 and -90 <= dec <= 90 and 0 < radius_deg <= 180):  # type: ignore[operator]
        raise PolicyInvalid("cone out of range: 0 <= ra < 360, -90 <= dec <= 90, 0 < radius_deg <= 180")
    if timezone.is_naive(exclusive_until) or timezone.is_naive(expires_at):
        raise PolicyInvalid("times must be aware datetimes")
    if exclusive_until <= now:
        raise PolicyInvalid("the exclusivity window must end in the future")
    if expires_at < exclusive_until:
        raise PolicyInvalid("a claim cannot expire before its exclusivity ends")


def claim_propose(
    *, team: Group, by: Any, title: str, exclusive_until: datetime, expires_at: datetime, scope: str = "",
    target: Target | None = None, object_class: str = "", ra: float | None = None, dec: float | None = None,
    radius_deg: float | None = None, now: datetime | None = None,
) -> Claim:
    """Register ``team``'s intent to analyse or publish on a target or a topic.

    ``by`` must be an admin or a member of the team (observers may not claim) and must see
    the target. Teams owning the target whose policy asks for it must agree first
    (``claim.consent_needed``); overlapping open claims of other teams are recorded as
    conflicts, both sides become contested, and both teams are told (``claim.overlap``).
    """
    now = now or clock.now()
    if _acting_role(user=by, group=team) not in (Role.ADMIN, Role.MEMBER):
        raise PolicyForbidden("only the team's admins and members may claim for it")
    _validate(title=title, target=target, object_class=object_class, ra=ra, dec=dec, radius_deg=radius_deg,
              exclusive_until=exclusive_until, expires_at=expires_at, now=now)
    if target is not None and not access.target_visible_to(user=by, target=target, now=now):
        raise PolicyInvalid("no such target")
    policies = policies_in_force()
    mine = policies[team.pk]
    with transaction.atomic():
        claim = Claim.objects.create(
            team=team, created_by=by, title=title.strip()[:200], scope=scope, target=target, object_class=object_class.strip(),
            ra=ra, dec=dec, radius_deg=radius_deg, exclusive_until=exclusive_until, expires_at=expires_at,
            state=ClaimState.PROPOSED, policy_version_id=mine.version_id, created_at=now, updated_at=now,
        )
        ClaimTransition.objects.create(claim=claim, from_state="", to_state=ClaimState.PROPOSED, by=by, reason="proposed", at=now)
        if target is not None:
            for owner_id in sorted(_owner_groups(target) - {team.pk}):
                owner = policies.get(owner_id)
                if owner is None or not owner.document.publication.claims_need_agreement:
                    continue
                ClaimConsent.objects.create(claim=claim, team_id=owner_id, policy_version_id=owner.version_id)
                decision_record(action=PolicyDecision.Action.CLAIM, decision="consent_required", team=owner_id,
                                policy_version_id=owner.version_id, user=by, obj=claim,
                                reason=f"{mine.slug} claims a target of {owner.slug}; its policy asks for agreement", now=now)
                _announce(claim, "claim.consent_needed", [Group.objects.get(pk=owner_id)], now, target_id=target.pk)
        _detect_overlaps(claim, by=by, now=now, policies=policies)
        _settle(claim, by=by, reason="proposed", now=now)
    return claim


def _detect_overlaps(claim: Claim, *, by: Any, now: datetime, policies: dict[int, Any]) -> list[ClaimConflict]:
    mine = claim_subject(claim)
    conflicts = []
    others = Claim.objects.filter(state__in=CLAIM_OPEN_STATES).exclude(team=claim.team).exclude(pk=claim.pk).select_related("target", "team")
    for other in others:
        reason = overlap_reason(mine, claim_subject(other))
        if reason is None:
            continue
        a, b = sorted((claim, other), key=lambda c: c.pk)
        conflict, created = ClaimConflict.objects.get_or_create(claim_a=a, claim_b=b, defaults={"reason": reason[:200], "detected_at": now})
        if not created and conflict.resolved_at is not None:
            continue  # the teams settled this pair before
        conflicts.append(conflict)
        for side in (claim, other):
            policy = policies.get(side.team_id)
            decision_record(action=PolicyDecision.Action.CLAIM, decision="conflict", team=side.team_id,
                            policy_version_id=policy.version_id if policy else None, user=by, obj=side,
                            reason=f"claim {claim.pk} overlaps claim {other.pk}: {reason}",
                            detail={"claims": [claim.pk, other.pk]}, now=now)
        _announce(claim, "claim.overlap", [claim.team, other.team], now, other_claim_id=other.pk, reason=reason)
        _announce(other, "claim.overlap", [claim.team, other.team], now, other_claim_id=claim.pk, reason=reason)
        _settle(other, by=by, reason=f"overlaps claim {claim.pk} of {claim.team}", now=now)
    return conflicts


def _get_open(claim: Claim) -> Claim:
    locked = Claim.objects.select_for_update(of=("self",)).select_related("team", "target").get(pk=claim.pk)
    if locked.state in TERMINAL:
        raise PolicyConflict(f"the claim is {locked.state} already")
    return locked


def claim_consent(*, claim: Claim, team: Group, by: Any, agree: bool, now: datetime | None = None) -> Claim:
    """A target-owning team's admin agrees to, or declines, a claim on its target (declining releases it)."""
    now = now or clock.now()
    if _acting_role(user=by, group=team) != Role.ADMIN:
        raise PolicyForbidden("only the team's admins may answer for it")
    with transaction.atomic():
        claim = _get_open(claim)
        consent = claim.consents.filter(team=team).first()
        if consent is None:
            raise PolicyInvalid(f"{team} was not asked to agree to this claim")
        if consent.decision != ConsentDecision.PENDING:
            raise PolicyConflict(f"{team} has answered already ({consent.decision})")
        consent.decision = ConsentDecision.AGREED if agree else ConsentDecision.DECLINED
        consent.decided_by, consent.decided_at = by, now
        consent.save(update_fields=["decision", "decided_by", "decided_at"])
        decision_record(action=PolicyDecision.Action.CLAIM, decision=consent.decision, team=team,
                        policy_version_id=consent.policy_version_id, user=by, obj=claim, reason=f"{team} {consent.decision}", now=now)
        if agree:
            _settle(claim, by=by, reason=f"{team} agreed", now=now)
        else:
            _end(claim, ClaimState.RELEASED, by=by, reason=f"declined by {team}", now=now)
    return claim


def _end(claim: Claim, state: str, *, by: Any, reason: str, now: datetime) -> None:
    """Close a claim, resolve its conflicts, and let the claims it contested settle."""
    _transition(claim, state, by=by, reason=reason, now=now)
    _announce(claim, "claim.state_changed", [claim.team], now)
    conflicts = ClaimConflict.objects.filter(Q(claim_a=claim) | Q(claim_b=claim), resolved_at__isnull=True)
    others = [c.claim_b if c.claim_a_id == claim.pk else c.claim_a for c in conflicts.select_related("claim_a", "claim_b")]
    conflicts.update(resolved_at=now)
    for other in others:
        _settle(other, by=by, reason=f"claim {claim.pk} {state}", now=now)


def claim_release(*, claim: Claim, by: Any, reason: str = "", now: datetime | None = None) -> Claim:
    """The claiming team gives its claim up (an admin, or the member who made it)."""
    now = now or clock.now()
    role = _acting_role(user=by, group=claim.team)
    if role != Role.ADMIN and not (role == Role.MEMBER and claim.created_by_id == by.pk):
        raise PolicyForbidden("only the team's admins, or the member who made the claim, may release it")
    with transaction.atomic():
        claim = _get_open(claim)
        _end(claim, ClaimState.RELEASED, by=by, reason=reason or "released", now=now)
    return claim


def claim_conflict_resolve(*, claim: Claim, other: Claim, by: Any, now: datetime | None = None) -> Claim:
    """The team of the earlier claim accepts that a later, overlapping one coexists (e.g. they collaborate)."""
    now = now or clock.now()
    first, second = sorted((claim, other), key=lambda c: (c.created_at, c.pk))
    if _acting_role(user=by, group=first.team) != Role.ADMIN:
        raise PolicyForbidden("only an admin of the team with the earlier claim may accept the overlap")
    with transaction.atomic():
        a, b = sorted((claim, other), key=lambda c: c.pk)
        updated = ClaimConflict.objects.filter(claim_a=a, claim_b=b, resolved_at__isnull=True).update(resolved_at=now)
        if not updated:
            raise PolicyConflict("these claims have no open conflict")
        policy = policies_in_force().get(first.team_id)
        decision_record(action=PolicyDecision.Action.CLAIM, decision="conflict_resolved", team=first.team_id,
                        policy_version_id=policy.version_id if policy else None, user=by, obj=second,
                        reason=f"{first.team} accepts claim {second.pk} beside claim {first.pk}", now=now)
        for side in (a, b):
            _settle(Claim.objects.select_for_update().get(pk=side.pk), by=by, reason="overlap accepted", now=now)
    return Claim.objects.get(pk=claim.pk)


def claims_expire_due(*, now: datetime | None = None) -> int:
    """Expire open claims past ``expires_at`` (the ``policies.claims_expire_due`` beat task); returns how many."""
    now = now or clock.now()
    count = 0
    for pk in Claim.objects.filter(state__in=CLAIM_OPEN_STATES, expires_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            claim = Claim.objects.select_for_update().select_related("team").get(pk=pk)
            if claim.state in TERMINAL or claim.expires_at > now:
                continue  # another run got here first
            policy = policies_in_force().get(claim.team_id)
            _end(claim, ClaimState.EXPIRED, by=None, reason="expired", now=now)
            decision_record(action=PolicyDecision.Action.CLAIM, decision="expired", team=claim.team_id,
                            policy_version_id=policy.version_id if policy else None, obj=claim,
                            reason=f"expired at {claim.expires_at:%Y-%m-%d %H:%M} UTC", now=now)
            count += 1
    return count


@dataclass
class Contributor:
    """A team that gave data or telescope time to a claim's targets: a candidate for co-authorship."""

    team: Group
    data: dict[str, int] = field(default_factory=dict)
    first_acquired: datetime | None = None
    last_acquired: datetime | None = None
    hours: float = 0.0


def claim_contributors(*, claim: Claim) -> list[Contributor]:
    """Teams whose data or telescope time went into the claim's targets (most data first)."""
    target_ids = targets_in_subject(claim_subject(claim), _class_key())
    found: dict[int, Contributor] = {}
    teams = {g.pk: g for g in Group.objects.filter(Q(baton_data__target_id__in=target_ids) | Q(baton_usage__target_id__in=target_ids)).distinct()}
    data = (DataOwnership.objects.filter(target_id__in=target_ids, team__isnull=False).values("team_id", "kind")
            .annotate(n=Count("pk"), first=Min("acquired_at"), last=Max("acquired_at")).order_by())
    for row in data:
        c = found.setdefault(row["team_id"], Contributor(team=teams[row["team_id"]]))
        c.data[row["kind"]] = row["n"]
        c.first_acquired = min(filter(None, (c.first_acquired, row["first"])))
        c.last_acquired = max(filter(None, (c.last_acquired, row["last"])))
    for team_id, hours in UsageEntry.objects.filter(target_id__in=target_ids).values("team_id").annotate(h=Sum("hours")).order_by().values_list("team_id", "h"):
        found.setdefault(team_id, Contributor(team=teams[team_id])).hours = float(hours)
    return sorted(found.values(), key=lambda c: (-sum(c.data.values()), -c.hours, c.team.name))


def publication_report(
    *, team: Group, by: Any, title: str, published_at: datetime | None = None, reference: str = "",
    target: Target | None = None, object_class: str = "", ra: float | None = None, dec: float | None = None,
    radius_deg: float | None = None, now: datetime | None = None,
) -> tuple[Publication, list[Claim]]:
    """Record a team's publication; publishing within another team's active exclusive claim is a breach.

    Returns the publication and the claims it violated (each is recorded as a breach of
    the publishing team, and both teams are told).
    """
    now = now or clock.now()
    published_at = published_at or now
    if _acting_role(user=by, group=team) not in (Role.ADMIN, Role.MEMBER):
        raise PolicyForbidden("only the team's admins and members may report its publications")
    if not title.strip():
        raise PolicyInvalid("a publication needs a title")
    if target is None and not object_class.strip() and radius_deg is None:
        raise PolicyInvalid("a publication needs a target, an object class or a sky cone")
    if target is not None and not access.target_visible_to(user=by, target=target, now=now):
        raise PolicyInvalid("no such target")
    subject = subject_of(target=target, object_class=object_class, ra=ra, dec=dec, radius_deg=radius_deg, class_key=_class_key())
    with transaction.atomic():
        publication = Publication.objects.create(
            team=team, reported_by=by, title=title.strip()[:300], reference=reference[:200], target=target,
            object_class=object_class.strip(), ra=ra, dec=dec, radius_deg=radius_deg, published_at=published_at, created_at=now,
        )
        violated = []
        exclusive = Claim.objects.filter(state=ClaimState.ACTIVE, created_at__lte=published_at, exclusive_until__gte=published_at)
        for claim in exclusive.exclude(team=team).select_related("team", "target"):
            reason = overlap_reason(subject, claim_subject(claim))
            if reason is None:
                continue
            violated.append(claim)
            policy = policies_in_force().get(claim.team_id)
            breach_record(
                team=team, breach_kind=BreachKind.CLAIM_VIOLATION, source_key=f"publication:{publication.pk}:claim:{claim.pk}",
                policy_version_id=policy.version_id if policy else None, now=now,
                reason=f"{title.strip()[:100]!r} published during {claim.team}'s exclusive claim {claim.pk} ({reason})",
                detail={"publication": publication.pk, "claim": claim.pk},
            )
            _announce(claim, "claim.state_changed", [claim.team], now, publication=publication.title, breach=True)
    return publication, violated
