"""The policies, projected onto django-guardian permissions so that TOM's own pages obey them.

TOM (with ``TARGET_PERMISSIONS_ONLY = False``) shows a datum or a data product
to a user only with a ``view_<model>`` object permission, and a private target
only with ``view_target``. This module keeps those permissions equal to what
:mod:`policies.access` decides, for every row a team owns:

* the owning team's group, and its partners for the data kind, at once;
* the release audience's group (``Baton network`` or TOM's ``Public``) once the
  proprietary period has ended (:func:`team_grants_sync` with ``now`` past it;
  the ``policies.data_release_due`` beat task runs it);
* for a datum a team owns, every permission a Baton-managed group (a team or an
  audience) holds beyond that is revoked, in the same transaction as the policy
  change that withdrew it: the policy is the only source of permissions on
  owned data;
* for a target, only the ``view_target`` grants the projection made itself
  (recorded in ``PolicyTargetGrant``) are ever withdrawn: TOM's forms and other
  apps (the candidate ingest) grant targets for reasons of their own.

Grants lag the policy only where the policy widens with time (a proprietary
period ending between two beat runs): TOM's pages then show data a few minutes
late, never early. Inserts and deletes are single SQL statements over the
ownership table, so a team with 10^5 data points re-syncs in about a second.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Min, QuerySet
from guardian.models import GroupObjectPermission
from tom_targets.models import Target

from .models import Audience, DataKind, DataOwnership, PolicyTargetGrant, TargetInterest, Team
from .selectors import TeamPolicy, audience_group, policies_in_force

_GOP = GroupObjectPermission._meta.db_table


@dataclass
class SyncResult:
    """What a sync did: rows newly released per kind, and permissions added/removed on targets."""

    released: dict[str, int] = field(default_factory=dict)
    target_grants_added: int = 0
    target_grants_removed: int = 0


def _view_permission_id(content_type: ContentType) -> int:
    return Permission.objects.get(content_type=content_type, codename=f"view_{content_type.model}").pk


def audience_group_ids() -> dict[str, int]:
    """The group id of each audience (network, public), looked up once per sync."""
    return {a.value: audience_group(audience=a).pk for a in (Audience.NETWORK, Audience.PUBLIC)}


def managed_group_ids() -> list[int]:
    """Groups whose object permissions Baton manages on owned rows: every team and both audiences."""
    return sorted(set(Team.objects.values_list("group_id", flat=True)) | set(audience_group_ids().values()))


def _subquery(qs: QuerySet) -> tuple[str, tuple]:
    sql, params = qs.values("object_id").query.sql_with_params()
    return sql, tuple(params)


def _grant(*, permission_id: int, content_type_id: int, group_ids: list[int], rows: QuerySet) -> None:
    if not group_ids:
        return
    sql, params = _subquery(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_GOP} (permission_id, content_type_id, object_pk, group_id) "  # noqa: S608 - table name from the model; values bound
            f"SELECT %s, %s, sub.object_id::text, g.id FROM ({sql}) sub CROSS JOIN unnest(%s::int[]) AS g(id) "
            "ON CONFLICT DO NOTHING",
            (permission_id, content_type_id, *params, group_ids),
        )


def _revoke(*, permission_id: int, content_type_id: int, group_ids: list[int], rows: QuerySet) -> None:
    if not group_ids:
        return
    sql, params = _subquery(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_GOP} WHERE permission_id = %s AND content_type_id = %s AND group_id = ANY(%s) "  # noqa: S608
            f"AND object_pk IN (SELECT sub.object_id::text FROM ({sql}) sub)",
            (permission_id, content_type_id, group_ids, *params),
        )


def _audiences(*, owner: TeamPolicy, kind: str, audiences: dict[str, int]) -> tuple[set[int], int | None]:
    """(groups that see the kind at once, the group that sees it after the proprietary period)."""
    rule = owner.document.rule(kind)
    at_once = {owner.group_id, *owner.partners(kind)}
    release = None if rule.release_to == Audience.NONE else audiences[rule.release_to]
    return at_once, release


def data_grants_sync(*, owner: TeamPolicy, now: datetime, managed: list[int], ownership: QuerySet | None = None) -> dict[str, int]:
    """Make the permissions on ``owner``'s data (or the ``ownership`` subset) match its policy at ``now``.

    Returns how many rows were newly released per kind (their ``released_at`` is set to ``now``).
    """
    base = ownership if ownership is not None else DataOwnership.objects.all()
    released_counts: dict[str, int] = {}
    audiences = audience_group_ids()
    for kind in (DataKind.PHOTOMETRY, DataKind.SPECTRA):
        rule = owner.document.rule(kind)
        at_once, release = _audiences(owner=owner, kind=kind, audiences=audiences)
        rows = base.filter(team_id=owner.group_id, kind=kind)
        cut = now - rule.proprietary
        for ct_id in rows.values_list("content_type_id", flat=True).distinct().order_by():
            ct = ContentType.objects.get_for_id(ct_id)
            perm = _view_permission_id(ct)
            of_type = rows.filter(content_type_id=ct_id)
            due = of_type.filter(acquired_at__lte=cut) if release else of_type.none()
            not_due = of_type.exclude(acquired_at__lte=cut) if release else of_type
            _grant(permission_id=perm, content_type_id=ct_id, group_ids=sorted(at_once), rows=of_type)
            _revoke(permission_id=perm, content_type_id=ct_id, group_ids=[g for g in managed if g not in at_once], rows=not_due)
            if release:
                _grant(permission_id=perm, content_type_id=ct_id, group_ids=[release], rows=due)
                _revoke(permission_id=perm, content_type_id=ct_id,
                        group_ids=[g for g in managed if g not in at_once and g != release], rows=due)
        if release:
            newly = rows.filter(acquired_at__lte=cut, released_at__isnull=True).update(released_at=now)
            rows.filter(released_at__isnull=False).exclude(acquired_at__lte=cut).update(released_at=None)
        else:
            newly = 0
            rows.filter(released_at__isnull=False).update(released_at=None)
        if newly:
            released_counts[kind] = newly
    return released_counts


def survey_data_grants_sync(*, ownership: QuerySet | None = None) -> None:
    """Public survey data (no owning team) is granted to TOM's ``Public`` group: it goes with its target."""
    public = audience_group(audience=Audience.PUBLIC).pk
    rows = (ownership if ownership is not None else DataOwnership.objects.all()).filter(team__isnull=True)
    for ct_id in rows.values_list("content_type_id", flat=True).distinct().order_by():
        ct = ContentType.objects.get_for_id(ct_id)
        _grant(permission_id=_view_permission_id(ct), content_type_id=ct_id, group_ids=[public], rows=rows.filter(content_type_id=ct_id))


def target_grants_sync(*, target_ids: list[int], now: datetime, policies: dict[int, TeamPolicy] | None = None,
                       managed: list[int] | None = None) -> tuple[int, int]:
    """Make ``view_target`` on these targets, for Baton-managed groups, match the policies at ``now``.

    A group sees a target when it sees any team's interest in it (shared like requests) or
    any team's datum on it. Only grants this function made (``PolicyTargetGrant``) are
    withdrawn; others' grants stay. Returns (permissions added, permissions removed).
    """
    if not target_ids:
        return 0, 0
    policies = policies if policies is not None else policies_in_force()
    managed = managed if managed is not None else managed_group_ids()
    desired: dict[int, set[int]] = defaultdict(set)
    audiences = audience_group_ids()

    def widen(target_id: int, owner: TeamPolicy | None, kind: str, earliest: datetime) -> None:
        if owner is None:
            return
        at_once, release = _audiences(owner=owner, kind=kind, audiences=audiences)
        desired[target_id] |= at_once
        if release and earliest + owner.document.rule(kind).proprietary <= now:
            desired[target_id].add(release)

    for row in (DataOwnership.objects.filter(target_id__in=target_ids, team__isnull=False)
                .values("target_id", "team_id", "kind").annotate(earliest=Min("acquired_at")).order_by()):
        widen(row["target_id"], policies.get(row["team_id"]), row["kind"], row["earliest"])
    for interest in TargetInterest.objects.filter(target_id__in=target_ids):
        widen(interest.target_id, policies.get(interest.team_id), DataKind.REQUESTS, interest.since)

    target_ct = ContentType.objects.get_for_model(Target)
    perm = Permission.objects.get(content_type=target_ct, codename="view_target")
    existing: dict[int, set[int]] = defaultdict(set)
    for object_pk, group_id in GroupObjectPermission.objects.filter(
        content_type=target_ct, permission=perm, group_id__in=managed, object_pk__in=[str(t) for t in target_ids]
    ).values_list("object_pk", "group_id"):
        existing[int(object_pk)].add(group_id)
    ours: dict[int, set[int]] = defaultdict(set)
    for target_id, group_id in PolicyTargetGrant.objects.filter(target_id__in=target_ids).values_list("target_id", "group_id"):
        ours[target_id].add(group_id)
    to_add = [(t, g) for t in target_ids for g in sorted(desired[t] - existing[t])]
    GroupObjectPermission.objects.bulk_create(
        [GroupObjectPermission(content_type=target_ct, permission=perm, object_pk=str(t), group_id=g) for t, g in to_add],
        ignore_conflicts=True,
    )
    PolicyTargetGrant.objects.bulk_create([PolicyTargetGrant(target_id=t, group_id=g) for t, g in to_add], ignore_conflicts=True)
    removed = 0
    for t in target_ids:
        # Only what the projection granted is withdrawn; TOM's and other apps' grants stay.
        withdrawn = ours[t] - desired[t]
        if withdrawn:
            removed += GroupObjectPermission.objects.filter(
                content_type=target_ct, permission=perm, object_pk=str(t), group_id__in=withdrawn
            ).delete()[0]
            PolicyTargetGrant.objects.filter(target_id=t, group_id__in=withdrawn).delete()
    return len(to_add), removed


def team_grants_sync(*, team: Group, now: datetime, ownership: QuerySet | None = None) -> SyncResult:
    """Re-project one team's policy onto its data and targets (all of it, or the ``ownership`` subset)."""
    policies = policies_in_force()
    owner = policies.get(team.pk)
    if owner is None:
        raise ValueError(f"{team} is not a Baton team")
    if ownership is not None:
        # Pin the rows: the sync itself changes fields (released_at) a lazy filter may select on.
        ownership = DataOwnership.objects.filter(pk__in=list(ownership.values_list("pk", flat=True)))
    managed = managed_group_ids()
    result = SyncResult(released=data_grants_sync(owner=owner, now=now, managed=managed, ownership=ownership))
    base = ownership if ownership is not None else DataOwnership.objects.filter(team=team)
    target_ids = set(base.values_list("target_id", flat=True).distinct().order_by())
    if ownership is None:
        target_ids |= set(TargetInterest.objects.filter(team=team).values_list("target_id", flat=True))
    result.target_grants_added, result.target_grants_removed = target_grants_sync(
        target_ids=sorted(target_ids), now=now, policies=policies, managed=managed
    )
    return result


def grant_change_target(*, team: Group, target: Target) -> None:
    """A team that follows a target may edit it in TOM (never delete: others' data hangs on it)."""
    from guardian.shortcuts import assign_perm

    assign_perm("tom_targets.change_target", team, target)
