"""The one door: whether a user may see a target, a datum, a request or a claim.

Every view, API, export, search and notification of Baton asks these
functions; TOM's own pages see the same answers through the django-guardian
permissions that :mod:`policies.grants` keeps in step with the policies.

The rules, in order (each is one line below and has its own test):

* nobody signed out or inactive sees anything; a superuser sees everything;
* a datum is seen only with its target;
* a team's own members see all the team's data, requests and claims;
* the team's named partners (per data kind) see it at once;
* everybody in the kind's ``release_to`` audience (``network``: members of any
  team; ``public``: every user) sees it ``proprietary_days`` after it was taken;
* data leaves Baton (to a destination of the ``sharing`` app) only once released
  to an audience, and only to the destinations the policy names for its kind;
* data no team owns follows TOM: public survey data (ownership with no team)
  goes with its target; data with no ownership row at all is shown only where
  TOM itself granted it (an upload shared with a group).

A target is visible when TOM shows it (an open target, or a guardian grant), or
when a team's interest in it (shared like the team's requests) or any team's
datum on it is visible to the user. ``now`` makes time injectable: tests move
the clock instead of sleeping.

Which team owns a datum is recorded in ``DataOwnership`` by
:func:`policies.services.data_record_ownership`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target
from tom_targets.permissions import targets_for_user

from . import clock
from .models import (
    Audience,
    Claim,
    ClaimConflict,
    ClaimState,
    DataKind,
    DataOwnership,
    PolicyDecision,
    TargetInterest,
)
from .selectors import AnyUser, TeamPolicy, policies_in_force, team_group_ids_of

NOBODY = Q(pk__in=[])
PUBLIC_CLAIM_STATES = (ClaimState.ACTIVE, ClaimState.CONTESTED, ClaimState.RELEASED, ClaimState.EXPIRED)


@dataclass(frozen=True)
class Decision:
    """An access decision, with the team whose policy decided and the version it used."""

    allowed: bool
    reason: str
    team_id: int | None = None  # the deciding team's group id
    policy_version_id: int | None = None

    def __bool__(self) -> bool:
        return self.allowed


def _now(now: datetime | None) -> datetime:
    return now or clock.now()


def _by_policy(policy: TeamPolicy | None, allowed: bool, reason: str) -> Decision:
    return Decision(allowed, reason, policy.group_id if policy else None, policy.version_id if policy else None)


# --- the sharing rule, once as a decision and once as a query ----------------------------------


def shared_decision(*, mine: frozenset[int], owner: TeamPolicy, kind: str, taken_at: datetime, now: datetime) -> Decision:
    """Whether members of the groups ``mine`` may see ``owner``'s ``kind`` taken at ``taken_at``."""
    rule = owner.document.rule(kind)
    if owner.group_id in mine:
        return _by_policy(owner, True, "own team")
    if mine & owner.partners(kind):
        return _by_policy(owner, True, f"partner of {owner.slug} for {kind}")
    released = taken_at + rule.proprietary <= now
    if rule.release_to == Audience.PUBLIC and released:
        return _by_policy(owner, True, f"{kind} of {owner.slug} is public since {taken_at + rule.proprietary:%Y-%m-%d %H:%M}")
    if rule.release_to == Audience.NETWORK and mine and released:
        return _by_policy(owner, True, f"{kind} of {owner.slug} is shared with the network")
    if rule.release_to == Audience.NONE:
        return _by_policy(owner, False, f"{kind} of {owner.slug} is not shared")
    if rule.release_to == Audience.NETWORK and not mine:
        return _by_policy(owner, False, f"{kind} of {owner.slug} is shared with network teams only")
    return _by_policy(owner, False, f"{kind} of {owner.slug} is proprietary until {taken_at + rule.proprietary:%Y-%m-%d %H:%M} UTC")


def shared_rows_q(
    *, mine: frozenset[int], kind: str, now: datetime, policies: dict[int, TeamPolicy],
    team_field: str = "team", time_field: str = "created_at",
) -> Q:
    """The rows (owned through ``team_field``, taken at ``time_field``) that :func:`shared_decision` allows."""
    q = Q(**{f"{team_field}__in": sorted(mine)}) if mine else NOBODY
    for group_id, owner in policies.items():
        if group_id in mine:
            continue
        rule = owner.document.rule(kind)
        if mine & owner.partners(kind):
            q |= Q(**{team_field: group_id})
        elif rule.release_to == Audience.PUBLIC or (rule.release_to == Audience.NETWORK and mine):
            q |= Q(**{team_field: group_id, f"{time_field}__lte": now - rule.proprietary})
    return q


def _owned_data_q(*, mine: frozenset[int], now: datetime, policies: dict[int, TeamPolicy]) -> Q:
    """DataOwnership rows of teams whose policy lets the groups ``mine`` see them."""
    q = NOBODY
    for kind in (DataKind.PHOTOMETRY, DataKind.SPECTRA):
        q |= Q(kind=kind) & shared_rows_q(mine=mine, kind=kind, now=now, policies=policies, time_field="acquired_at")
    return q


# --- targets ------------------------------------------------------------------------------


def targets_visible_to(*, user: AnyUser, now: datetime | None = None, queryset: QuerySet[Target] | None = None) -> QuerySet[Target]:
    """The targets a user may see (TOM's own rule, widened by the teams' policies)."""
    qs = queryset if queryset is not None else Target.objects.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser:
        return qs
    now = _now(now)
    mine = team_group_ids_of(user=user)
    policies = policies_in_force()
    tom_visible = targets_for_user(user, Target.objects.all(), "view_target").values("pk")
    by_interest = TargetInterest.objects.filter(
        shared_rows_q(mine=mine, kind=DataKind.REQUESTS, now=now, policies=policies, time_field="since")
    ).values("target_id")
    by_data = DataOwnership.objects.filter(team__isnull=False).filter(
        _owned_data_q(mine=mine, now=now, policies=policies)
    ).values("target_id")
    return qs.filter(Q(pk__in=tom_visible) | Q(pk__in=by_interest) | Q(pk__in=by_data))


def target_access(*, user: AnyUser, target: Target, now: datetime | None = None) -> Decision:
    """Whether a user may see a target, and why."""
    if not user.is_authenticated or not user.is_active:
        return Decision(False, "not signed in")
    if user.is_superuser:
        return Decision(True, "superuser")
    if target.permissions != Target.Permissions.PRIVATE:
        return Decision(True, "an open target (TOM)")
    if user.has_perm("tom_targets.view_target", target):
        return Decision(True, "granted in TOM")
    now = _now(now)
    mine = team_group_ids_of(user=user)
    policies = policies_in_force()
    refusal: Decision | None = None
    for interest in TargetInterest.objects.filter(target=target):
        owner = policies.get(interest.team_id)
        if owner is None:
            continue
        decision = shared_decision(mine=mine, owner=owner, kind=DataKind.REQUESTS, taken_at=interest.since, now=now)
        if decision:
            return decision
        if refusal is None:
            refusal = decision
    owned = DataOwnership.objects.filter(target=target, team__isnull=False).filter(_owned_data_q(mine=mine, now=now, policies=policies))
    if (first := owned.first()) is not None:
        return _by_policy(policies.get(first.team_id or 0), True, f"{first.kind} on it is shared")
    return refusal if refusal is not None else Decision(False, "not shared with you")


def target_visible_to(*, user: AnyUser, target: Target, now: datetime | None = None, audit: bool = True) -> bool:
    """:func:`target_access` as a bool; a refusal is recorded in the audit trail unless ``audit=False``."""
    decision = target_access(user=user, target=target, now=now)
    if not decision and audit:
        _record_refusal(user=user, obj=target, decision=decision, now=now)
    return decision.allowed


# --- data ---------------------------------------------------------------------------------


def _view_perm(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.view_{model._meta.model_name}"


def reduced_data_visible_to(
    *, user: AnyUser, model: type[models.Model] = PhotometryReducedDatum, target: Target | None = None,
    now: datetime | None = None, queryset: QuerySet | None = None,
) -> QuerySet:
    """The rows of a TOM data model (any ReducedDatum type, or DataProduct) a user may see."""
    qs = queryset if queryset is not None else model._default_manager.all()
    if target is not None:
        qs = qs.filter(target=target)
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser:
        return qs
    now = _now(now)
    mine = team_group_ids_of(user=user)
    policies = policies_in_force()
    owned = DataOwnership.objects.filter(content_type=ContentType.objects.get_for_model(model))
    visible_owned = owned.filter(Q(team__isnull=True) | _owned_data_q(mine=mine, now=now, policies=policies))
    granted_in_tom = get_objects_for_user(user, _view_perm(model), klass=model._default_manager.all(), accept_global_perms=False)
    return qs.filter(target__in=targets_visible_to(user=user, now=now)).filter(
        Q(pk__in=visible_owned.values("object_id"))
        | (~Q(pk__in=owned.values("object_id")) & Q(pk__in=granted_in_tom.values("pk")))
    )


def datum_access(*, user: AnyUser, datum: models.Model, now: datetime | None = None) -> Decision:
    """Whether a user may see one datum (a ReducedDatum of any type, or a DataProduct), and why."""
    if not user.is_authenticated or not user.is_active:
        return Decision(False, "not signed in")
    if user.is_superuser:
        return Decision(True, "superuser")
    target = datum.target  # type: ignore[attr-defined]
    if not target_access(user=user, target=target, now=now):
        return Decision(False, "its target is not visible")
    ownership = DataOwnership.objects.filter(content_type=ContentType.objects.get_for_model(datum), object_id=datum.pk).first()
    if ownership is None:
        return Decision(user.has_perm(_view_perm(type(datum)), datum), "TOM's own permission (no team owns it)")
    if ownership.team_id is None:
        return Decision(True, "public survey data")
    owner = policies_in_force().get(ownership.team_id)
    if owner is None:
        return Decision(False, "owned by a group that is not a team")
    return shared_decision(mine=team_group_ids_of(user=user), owner=owner, kind=ownership.kind,
                           taken_at=ownership.acquired_at, now=_now(now))


def datum_visible_to(*, user: AnyUser, datum: models.Model, now: datetime | None = None, audit: bool = True) -> bool:
    """:func:`datum_access` as a bool; a refusal is recorded in the audit trail unless ``audit=False``."""
    decision = datum_access(user=user, datum=datum, now=now)
    if not decision and audit:
        _record_refusal(user=user, obj=datum, decision=decision, now=now)
    return decision.allowed


# --- data leaving Baton (the sharing app's destinations) ----------------------------------------


def share_out_access(*, ownership: DataOwnership | None, destination: str, now: datetime | None = None) -> Decision:
    """Whether a datum may be pushed to the owning team's destination named ``destination``, and why.

    Only released data leaves Baton: the owning team's policy in force must release the datum's
    kind to an audience (network or public), name the destination for that kind, and the
    proprietary period must be over. The time is the later of ``now`` and the release the
    policies recorded (``released_at``, set by the projection under the policy in force and
    cleared when a policy lengthens the period): a worker cannot see a test's moved clock, and
    a release the policies made is never second-guessed by a slower clock.
    """
    if ownership is None:
        return Decision(False, "no team owns it (it was deleted, or it is not a team's datum)")
    if ownership.team_id is None:
        return Decision(False, "public survey data is not the team's to push")
    owner = policies_in_force().get(ownership.team_id)
    if owner is None:
        return Decision(False, "owned by a group that is not a team")
    rule = owner.document.rule(ownership.kind)
    if destination not in rule.destinations:
        return _by_policy(owner, False, f"the policy does not name {destination!r} for {ownership.kind}")
    if rule.release_to == Audience.NONE:
        return _by_policy(owner, False, f"{ownership.kind} of {owner.slug} is not released")
    if ownership.released_at is None:
        return _by_policy(owner, False, f"{ownership.kind} of {owner.slug} is not released yet")
    at = max(_now(now), ownership.released_at)
    if ownership.acquired_at + rule.proprietary > at:
        return _by_policy(owner, False, f"{ownership.kind} of {owner.slug} is proprietary until "
                                        f"{ownership.acquired_at + rule.proprietary:%Y-%m-%d %H:%M} UTC")
    return _by_policy(owner, True, f"{ownership.kind} of {owner.slug} is released to the {rule.release_to}")


# --- observing requests (the scheduler's models) ---------------------------------------------


def requests_visible_q(*, user: AnyUser, now: datetime | None = None, team_field: str = "team", time_field: str = "created_at") -> Q:
    """A filter for the scheduler's requests a user may see: ``ObservingRequest.objects.filter(q)``.

    Requests are shared as their team's ``requests`` rule says, counted from ``time_field``.
    """
    if not user.is_authenticated or not user.is_active:
        return NOBODY
    if user.is_superuser:
        return ~NOBODY
    return shared_rows_q(mine=team_group_ids_of(user=user), kind=DataKind.REQUESTS, now=_now(now),
                         policies=policies_in_force(), team_field=team_field, time_field=time_field)


def request_access(*, user: AnyUser, team_id: int, created_at: datetime, now: datetime | None = None) -> Decision:
    """Whether a user may see a request of team ``team_id`` made at ``created_at``."""
    if not user.is_authenticated or not user.is_active:
        return Decision(False, "not signed in")
    if user.is_superuser:
        return Decision(True, "superuser")
    owner = policies_in_force().get(team_id)
    if owner is None:
        return Decision(False, "the request's group is not a team")
    return shared_decision(mine=team_group_ids_of(user=user), owner=owner, kind=DataKind.REQUESTS, taken_at=created_at, now=_now(now))


def request_visible_to(*, user: AnyUser, request: Any, now: datetime | None = None, audit: bool = True) -> bool:
    """Whether a user may see one request (any object with ``team_id`` and ``created_at``)."""
    decision = request_access(user=user, team_id=request.team_id, created_at=request.created_at, now=now)
    if not decision and audit:
        _record_refusal(user=user, obj=request, decision=decision, now=now)
    return decision.allowed


# --- claims -------------------------------------------------------------------------------


def request_act_allowed(*, user: AnyUser, team_group_id: int) -> bool:
    """Whether ``user`` may act for the team on its observing requests (submit, cancel): an admin or member of that
    team. Seeing a request (another team's, shared by policy) is not enough, and an observer only watches."""
    from .models import Role, Team
    from .selectors import team_role_of

    team = Team.objects.filter(group_id=team_group_id).select_related("group").first()
    if team is None:
        return False
    return team_role_of(user=user, team=team) in (Role.ADMIN, Role.MEMBER)


def claims_visible_to(*, user: AnyUser, now: datetime | None = None) -> QuerySet[Claim]:
    """Claims a user may see.

    A team sees its own claims, claims it was asked to agree to, and claims in conflict with
    its own; every team member sees claims past the proposal stage, on a topic or on a
    target they may see. Users outside every team see none.
    """
    qs = Claim.objects.select_related("team", "target")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser:
        return qs
    mine = team_group_ids_of(user=user)
    if not mine:
        return qs.none()
    own = Q(team__in=mine)
    consulted = Q(consents__team__in=mine)
    my_claims = Claim.objects.filter(team__in=mine).values("pk")
    conflicting = Q(pk__in=ClaimConflict.objects.filter(claim_b__in=my_claims).values("claim_a")) | Q(
        pk__in=ClaimConflict.objects.filter(claim_a__in=my_claims).values("claim_b")
    )
    announced = Q(state__in=PUBLIC_CLAIM_STATES) & (Q(target__isnull=True) | Q(target__in=targets_visible_to(user=user, now=now)))
    return qs.filter(own | consulted | conflicting | announced).distinct()


def claim_visible_to(*, user: AnyUser, claim: Claim, now: datetime | None = None) -> bool:
    return claims_visible_to(user=user, now=now).filter(pk=claim.pk).exists()


# --- policies and teams ------------------------------------------------------------------------

POLICY_PARTS = ("sharing", "publication", "time", "notifications")
PUBLIC_POLICY_PARTS = ("sharing", "publication")


def policy_parts_readable(*, user: AnyUser, team_group_id: int) -> list[str]:
    """The parts of a team's policy a user may read: all for its members, sharing and publication for others."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser or team_group_id in team_group_ids_of(user=user):
        return list(POLICY_PARTS)
    return list(PUBLIC_POLICY_PARTS)


# --- audit ------------------------------------------------------------------------------------


def _record_refusal(*, user: AnyUser, obj: models.Model | Any, decision: Decision, now: datetime | None) -> None:
    PolicyDecision.objects.create(
        at=_now(now),
        team_id=decision.team_id,
        policy_version_id=decision.policy_version_id,
        user=user if isinstance(user, User) else None,
        action=PolicyDecision.Action.READ,
        decision="deny",
        object_type=getattr(getattr(obj, "_meta", None), "label_lower", type(obj).__name__),
        object_id=str(getattr(obj, "pk", "")),
        reason=decision.reason,
    )
