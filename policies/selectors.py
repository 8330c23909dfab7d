"""Reads: teams, roles, the policies in force, usage against allocations, the ledger, the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db.models import QuerySet, Sum

from . import clock
from .documents import Allocation, PolicyDocument
from .models import (
    Audience,
    AudienceGroup,
    DataKind,
    LedgerEntry,
    LedgerKind,
    PolicyDecision,
    PolicyVersion,
    Role,
    Team,
    TeamRole,
    UsageEntry,
)

# Baton uses Django's own user model (as TOM does); a request's user may be anonymous.
AnyUser = User | AnonymousUser


def policies_setting(name: str, default: Any) -> Any:
    """One entry of the ``BATON_POLICIES`` setting (read when needed, never at import)."""
    return getattr(settings, "BATON_POLICIES", {}).get(name, default)


# --- teams and roles ------------------------------------------------------------------------


def team_of(*, group: Group | int) -> Team | None:
    """The Team of an ``auth.Group`` (or group id), or None if the group is not a team."""
    group_id = group if isinstance(group, int) else group.pk
    return Team.objects.select_related("group").filter(group_id=group_id).first()


def team_group_ids_of(*, user: AnyUser) -> frozenset[int]:
    """Ids of the team groups an active user belongs to (empty for anonymous or inactive users)."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    return frozenset(Team.objects.filter(group__user=user).values_list("group_id", flat=True))


def teams_of(*, user: AnyUser) -> QuerySet[Team]:
    """The teams a user belongs to."""
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(group__user=user).select_related("group")


def team_role_of(*, user: AnyUser, team: Team) -> str | None:
    """The user's role in the team (admin, member, observer), or None for a non-member."""
    if not user.is_authenticated or not user.is_active:
        return None
    if not team.group.user_set.filter(pk=user.pk).exists():
        return None
    role = TeamRole.objects.filter(team=team, user_id=user.pk).values_list("role", flat=True).first()
    return role or Role.MEMBER.value


def team_is_admin(*, user: AnyUser, team: Team) -> bool:
    """Whether the user administers the team (its admins only: not even a superuser otherwise)."""
    return team_role_of(user=user, team=team) == Role.ADMIN


def team_members(*, team: Team) -> list[tuple[Any, str]]:
    """(user, role) for every member of the team, admins first."""
    roles = dict(TeamRole.objects.filter(team=team).values_list("user_id", "role"))
    order = {Role.ADMIN: 0, Role.MEMBER: 1, Role.OBSERVER: 2}
    members = [(user, roles.get(user.pk, Role.MEMBER.value)) for user in team.group.user_set.filter(is_active=True)]
    return sorted(members, key=lambda pair: (order[Role(pair[1])], pair[0].get_username()))


def audience_group(*, audience: str) -> Group:
    """The group that stands for the network or the public (created on first use)."""
    names = {Audience.NETWORK: "Baton network (all teams)", Audience.PUBLIC: "Public"}
    found = AudienceGroup.objects.select_related("group").filter(audience=audience).first()
    if found:
        return found.group
    # "Public" is TOM's own name for the group of every registered user (tom_common's adapter).
    group, _ = Group.objects.get_or_create(name=names[Audience(audience)])
    return AudienceGroup.objects.get_or_create(audience=audience, defaults={"group": group})[0].group


# --- policies in force ------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamPolicy:
    """A team's policy in force, with its partners resolved to group ids."""

    team_id: int
    group_id: int
    slug: str
    version_id: int | None
    number: int
    document: PolicyDocument
    partner_group_ids: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def partners(self, kind: str) -> frozenset[int]:
        return self.partner_group_ids.get(kind, frozenset())


def policies_in_force() -> dict[int, TeamPolicy]:
    """Every team's policy in force, keyed by the team's group id (two queries)."""
    teams = list(Team.objects.values_list("pk", "group_id", "slug"))
    group_of_slug = {slug: group_id for _, group_id, slug in teams}
    latest = {
        v.team_id: v
        for v in PolicyVersion.objects.order_by("team_id", "-number").distinct("team_id").only(
            "pk", "team_id", "number", "document"
        )
    }
    result: dict[int, TeamPolicy] = {}
    for team_id, group_id, slug in teams:
        version = latest.get(team_id)
        document = PolicyDocument.from_json(version.document) if version else PolicyDocument()
        partners = {
            kind: frozenset(group_of_slug[s] for s in document.rule(kind).partners if s in group_of_slug)
            for kind in DataKind.values
        }
        result[group_id] = TeamPolicy(
            team_id=team_id, group_id=group_id, slug=slug, version_id=version.pk if version else None,
            number=version.number if version else 0, document=document, partner_group_ids=partners,
        )
    return result


def policy_in_force(*, team: Team | Group) -> TeamPolicy:
    """One team's policy in force."""
    group_id = team.group_id if isinstance(team, Team) else team.pk
    found = policies_in_force().get(group_id)
    if found is None:
        raise ValueError(f"group {group_id} is not a Baton team")
    return found


def policy_version_current(*, team: Team) -> PolicyVersion | None:
    return team.policy_versions.order_by("-number").first()


# --- semesters, usage and allocations -----------------------------------------------------------


def semester_of(at: datetime) -> str:
    """The LCO-style semester of a time: ``YYYYA`` is Feb 1 - Jul 31, ``YYYYB`` is Aug 1 - Jan 31."""
    at = at.astimezone(UTC)
    if at.month == 1:
        return f"{at.year - 1}B"
    return f"{at.year}A" if at.month < 8 else f"{at.year}B"


def semester_bounds(semester: str) -> tuple[datetime, datetime]:
    """[start, end) of a semester, UTC."""
    year, half = int(semester[:4]), semester[4]
    if half == "A":
        return datetime(year, 2, 1, tzinfo=UTC), datetime(year, 8, 1, tzinfo=UTC)
    return datetime(year, 8, 1, tzinfo=UTC), datetime(year + 1, 2, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AllocationUsage:
    allocation: Allocation
    used_hours: float

    @property
    def remaining_hours(self) -> float:
        return self.allocation.hours - self.used_hours


def usage_hours(*, team: Group, semester: str, facility_class: str, facility_code: str = "") -> float:
    """Hours charged to the team in a semester on a class (or one facility of it)."""
    qs = UsageEntry.objects.filter(team=team, semester=semester, facility_class=facility_class)
    if facility_code:
        qs = qs.filter(facility_code=facility_code)
    return float(qs.aggregate(total=Sum("hours"))["total"] or 0.0)


def usage_summary(*, team: Team, semester: str | None = None, now: datetime | None = None) -> list[AllocationUsage]:
    """Each allocation of the semester (default: the current one) with the hours used against it."""
    semester = semester or semester_of(now or clock.now())
    document = policy_in_force(team=team).document
    return [
        AllocationUsage(allocation=a, used_hours=usage_hours(team=team.group, semester=semester,
                                                             facility_class=a.facility_class, facility_code=a.facility_code))
        for a in document.time.allocations
        if a.semester == semester
    ]


# --- the contribution ledger ----------------------------------------------------------------------


def ledger_window_start(now: datetime) -> datetime:
    return now - timedelta(days=float(policies_setting("LEDGER_WINDOW_DAYS", 365)))


def ledger_balance(*, team: Group, now: datetime | None = None) -> float:
    """The team's credit balance over the ledger window (entries older than the window are forgiven)."""
    now = now or clock.now()
    total = LedgerEntry.objects.filter(team=team, at__gt=ledger_window_start(now), at__lte=now).aggregate(s=Sum("amount"))["s"]
    return float(total or 0.0)


def ledger_totals(*, team: Group, now: datetime | None = None) -> dict[str, float]:
    """Credits per ledger kind over the window, and the balance."""
    now = now or clock.now()
    rows = (
        LedgerEntry.objects.filter(team=team, at__gt=ledger_window_start(now), at__lte=now)
        .values("kind")
        .annotate(total=Sum("amount"))
    )
    totals = {kind: 0.0 for kind in LedgerKind.values}
    for row in rows:
        totals[row["kind"]] = float(row["total"])
    totals["balance"] = sum(totals[k] for k in LedgerKind.values)
    return totals


def ledger_series(*, team: Group, now: datetime | None = None) -> list[tuple[datetime, float]]:
    """The running balance after each entry in the window, oldest first (for the ledger plot)."""
    now = now or clock.now()
    running = 0.0
    series = []
    for at, amount in LedgerEntry.objects.filter(team=team, at__gt=ledger_window_start(now), at__lte=now).order_by("at", "pk").values_list("at", "amount"):
        running += amount
        series.append((at, running))
    return series


# --- the audit trail ------------------------------------------------------------------------------


def decisions_for(*, team: Team, action: str | None = None) -> QuerySet[PolicyDecision]:
    """The policy decisions made by the team's policy, newest first."""
    qs = PolicyDecision.objects.filter(team=team.group).select_related("policy_version", "user")
    if action:
        qs = qs.filter(action=action)
    return qs
