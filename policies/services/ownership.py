"""Who owns which data and targets, and the release of data when its proprietary period ends.

Other apps call :func:`data_record_ownership` when they store data on behalf of
a team (the candidate ingest for alert photometry, the scheduler for the data
of a completed observation) and :func:`target_record_interest` when a team
takes up a target (a filter matched, a request was made).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.module_loading import import_string
from guardian.models import GroupObjectPermission
from tom_dataproducts.models import REDUCED_DATUM_MODELS, DataProduct
from tom_targets.models import Target

from .. import clock
from ..grants import (
    SyncResult,
    grant_change_target,
    survey_data_grants_sync,
    target_grants_sync,
    team_grants_sync,
)
from ..models import Audience, BreachKind, DataKind, DataOwnership, PolicyDecision, TargetInterest, Team
from ..selectors import audience_group, policies_in_force, policies_setting
from .audit import decision_record
from .errors import PolicyInvalid
from .ledger import breach_record, ledger_credit_shared

OWNABLE_MODELS = (*REDUCED_DATUM_MODELS, DataProduct)
DATA_KINDS = (DataKind.PHOTOMETRY.value, DataKind.SPECTRA.value)


def _release_hook() -> Any | None:
    """The dotted path ``BATON_POLICIES['RELEASE_HOOK']`` (check policies.E004), or None."""
    path = policies_setting("RELEASE_HOOK", "")
    return import_string(path) if path else None


def policy_apply(*, team: Group, now: datetime, ownership: models.QuerySet | None = None) -> SyncResult:
    """Project the team's policy onto TOM's permissions (all its data, or ``ownership``) and credit releases.

    When data was released, or the whole team was re-projected (a policy change, the
    reconciler), the release hook (``BATON_POLICIES['RELEASE_HOOK']``, the sharing app's
    outbox) is told, in the same transaction: ``hook(team=, now=, ownership=)`` with
    ``ownership`` the rows looked at (None: all the team's).
    """
    if ownership is not None:
        # Pin the rows: the sync changes fields (released_at) a lazy filter may select on.
        ownership = DataOwnership.objects.filter(pk__in=list(ownership.values_list("pk", flat=True)))
    result = team_grants_sync(team=team, now=now, ownership=ownership)
    if (result.released or ownership is None) and (hook := _release_hook()) is not None:
        hook(team=team, now=now, ownership=ownership)
    if result.released:
        policy = policies_in_force()[team.pk]
        for kind, count in result.released.items():
            ledger_credit_shared(team=team, kind=kind, count=count, at=now, policy_version_id=policy.version_id)
            decision_record(action=PolicyDecision.Action.RELEASE, decision="released", team=team,
                            policy_version_id=policy.version_id, object_type=kind, object_id=count,
                            reason=f"{count} {kind} released to the {policy.document.rule(kind).release_to}", now=now)
    return result


def _items(data: models.Model | Iterable[models.Model]) -> list[models.Model]:
    items = [data] if isinstance(data, models.Model) else list(data)
    for item in items:
        if not isinstance(item, OWNABLE_MODELS):
            raise PolicyInvalid(f"{type(item).__name__} is not TOM data (a ReducedDatum of any type, or a DataProduct)")
        if item.pk is None:
            raise PolicyInvalid("save the data before recording who owns it")
    return items


def data_record_ownership(
    *, data: models.Model | Iterable[models.Model], team: Group | None, kind: str, acquired_at: datetime | None = None,
    now: datetime | None = None, backfill: bool = False,
) -> list[DataOwnership]:
    """Record that ``team`` owns ``data`` (one datum or many) and share them as its policy says.

    ``data``: saved ReducedDatum rows of any TOM type, or DataProducts. ``team``: the owning
    team's group; ``None`` marks public survey data (e.g. a public broker's photometry), shown
    with its target. ``kind``: "photometry" or "spectra". ``acquired_at``: when the data was
    taken (default: each datum's ``timestamp``; ``now`` for a DataProduct); the proprietary
    period runs from it. Recording again for the same team changes nothing; a datum owned by
    another team is refused. Data recorded later than the policy's release date plus
    ``WITHHOLD_GRACE_HOURS`` is a breach ("data withheld") unless ``backfill`` (an archive
    being loaded). The team's members (and partners, and the network if it is already due)
    get the guardian permissions before this returns.
    """
    now = now or clock.now()
    items = _items(data)
    if kind not in DATA_KINDS:
        raise PolicyInvalid(f"kind must be one of {', '.join(DATA_KINDS)}, not {kind!r}")
    policy = None
    if team is not None:
        policy = policies_in_force().get(team.pk)
        if policy is None:
            raise PolicyInvalid(f"{team} is not a Baton team")
    if not items:
        return []
    rows = []
    for item in items:
        taken = acquired_at or getattr(item, "timestamp", None) or now
        if timezone.is_naive(taken):
            raise PolicyInvalid("acquired_at must be an aware datetime")
        rows.append(DataOwnership(content_type=ContentType.objects.get_for_model(item), object_id=item.pk,
                                  target_id=item.target_id,  # type: ignore[attr-defined]  # every ownable model has a target
                                  team=team, kind=kind, acquired_at=taken, recorded_at=now))
    by_type: dict[int, list[int]] = {}
    for row in rows:
        by_type.setdefault(row.content_type_id, []).append(row.object_id)
    keys = Q(pk__in=[])
    for ct_id, ids in by_type.items():
        keys |= Q(content_type_id=ct_id, object_id__in=ids)
    with transaction.atomic():
        clashing = DataOwnership.objects.filter(keys).exclude(team=team) if team else DataOwnership.objects.filter(keys, team__isnull=False)
        if clashing.exists():
            raise PolicyInvalid(f"{clashing.count()} of these data are owned by another team already")
        DataOwnership.objects.bulk_create(rows, ignore_conflicts=True)
        recorded = DataOwnership.objects.filter(keys)
        if team is None:
            survey_data_grants_sync(ownership=recorded)
            return list(recorded)
        assert policy is not None  # noqa: S101 - set above for a team
        policy_apply(team=team, now=now, ownership=recorded)
        rule = policy.document.rule(kind)
        grace = timedelta(hours=float(policies_setting("WITHHOLD_GRACE_HOURS", 48.0)))
        if not backfill and rule.release_to != Audience.NONE:
            late = [r for r in rows if r.recorded_at > r.acquired_at + rule.proprietary + grace]
            if late:
                breach_record(
                    team=team, breach_kind=BreachKind.WITHHELD, policy_version_id=policy.version_id, now=now,
                    source_key=f"withheld:{late[0].content_type_id}:{late[0].object_id}",
                    reason=f"{len(late)} {kind} recorded after their release date (policy v{policy.number}: "
                           f"{rule.proprietary_days:g} days to the {rule.release_to}, grace {grace})",
                    detail={"count": len(late), "earliest_acquired": min(r.acquired_at for r in late).isoformat()},
                )
        return list(recorded)


def target_record_interest(*, target: Target, team: Group, source: str = "", since: datetime | None = None,
                           now: datetime | None = None) -> TargetInterest:
    """Record that ``team`` follows ``target`` (idempotent): the team sees it and may edit it in TOM.

    Other teams see the target as the team's ``requests`` sharing rule says.
    """
    now = now or clock.now()
    if not Team.objects.filter(group=team).exists():
        raise PolicyInvalid(f"{team} is not a Baton team")
    with transaction.atomic():
        interest, created = TargetInterest.objects.get_or_create(target=target, team=team,
                                                                 defaults={"since": since or now, "source": source[:40]})
        if created:
            grant_change_target(team=team, target=target)
            target_grants_sync(target_ids=[target.pk], now=now)
    return interest


def target_interests_record(*, pairs: Iterable[tuple[int, int]], source: str = "", since: datetime | None = None,
                            now: datetime | None = None) -> int:
    """Record many (target id, team group id) interests at once, as an ingest does; returns how many pairs.

    The bulk form of :func:`target_record_interest`: one insert for the interests, one for the
    teams' ``change_target`` grants, one target sync for partners and audiences. Pairs whose
    group is not a Baton team are skipped.
    """
    now = now or clock.now()
    teams = set(Team.objects.values_list("group_id", flat=True))
    wanted = sorted({(int(t), int(g)) for t, g in pairs if int(g) in teams})
    if not wanted:
        return 0
    with transaction.atomic():
        TargetInterest.objects.bulk_create(
            [TargetInterest(target_id=t, team_id=g, since=since or now, source=source[:40]) for t, g in wanted],
            ignore_conflicts=True,
        )
        target_ct = ContentType.objects.get_for_model(Target)
        change = Permission.objects.get(content_type=target_ct, codename="change_target")
        GroupObjectPermission.objects.bulk_create(
            [GroupObjectPermission(content_type=target_ct, permission=change, object_pk=str(t), group_id=g) for t, g in wanted],
            ignore_conflicts=True,
        )
        target_grants_sync(target_ids=sorted({t for t, _ in wanted}), now=now)
    return len(wanted)


def interest_viewer_groups(*, team_ids: Iterable[int], policies: dict[int, Any] | None = None) -> dict[int, list[int]]:
    """For each team (group id) of ``team_ids`` that is a Baton team: the groups that see a target at once
    when the team takes an interest in it (the team, its partners for requests, and the requests' release
    audience when their proprietary period is zero).

    The set-based form of what :func:`target_interests_record` projects, for a bulk writer (the candidate
    ingest) that inserts the interests and the ``view_target`` grants in its own SQL; a later release
    (a proprietary period ending) is left to :func:`data_release_due`, as for any interest.
    """
    policies = policies if policies is not None else policies_in_force()
    audiences = {a.value: audience_group(audience=a).pk for a in (Audience.NETWORK, Audience.PUBLIC)}
    groups: dict[int, list[int]] = {}
    for team_id in sorted(set(team_ids)):
        policy = policies.get(team_id)
        if policy is None:
            continue
        rule = policy.document.rule(DataKind.REQUESTS)
        seen = {team_id, *policy.partners(DataKind.REQUESTS)}
        if rule.release_to != Audience.NONE and rule.proprietary <= timedelta(0):
            seen.add(audiences[rule.release_to])
        groups[team_id] = sorted(seen)
    return groups


def data_release_due(*, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Release what has left its proprietary period by ``now`` (the ``policies.data_release_due`` beat task).

    Data not yet released, and targets a team follows that the release audience cannot see
    yet, are projected; everything else is left alone, so a run with nothing due is cheap.
    Returns, per team slug, how many data were released per kind and targets shown.
    """
    now = now or clock.now()
    released: dict[str, dict[str, int]] = {}
    target_ct = ContentType.objects.get_for_model(Target)
    for group_id, policy in policies_in_force().items():
        due = Q(pk__in=[])
        for kind in DATA_KINDS:
            rule = policy.document.rule(kind)
            if rule.release_to != Audience.NONE:
                due |= Q(kind=kind, acquired_at__lte=now - rule.proprietary)
        rows = DataOwnership.objects.filter(team_id=group_id, released_at__isnull=True).filter(due)
        outcome: dict[str, int] = {}
        if rows.exists():
            result = policy_apply(team=Group.objects.get(pk=group_id), now=now, ownership=rows)
            outcome.update(result.released)
            outcome["targets"] = result.target_grants_added
        rule = policy.document.rule(DataKind.REQUESTS)
        if rule.release_to != Audience.NONE:
            shown = GroupObjectPermission.objects.filter(
                content_type=target_ct, permission__codename="view_target",
                group=audience_group(audience=rule.release_to),
            ).values("object_pk")
            pending = list(
                TargetInterest.objects.filter(team_id=group_id, since__lte=now - rule.proprietary)
                .annotate(target_key=Cast("target_id", CharField())).exclude(target_key__in=shown)
                .values_list("target_id", flat=True)
            )
            if pending:
                added, _ = target_grants_sync(target_ids=pending, now=now)
                outcome["targets"] = outcome.get("targets", 0) + added
        if any(outcome.values()):
            released[policy.slug] = outcome
    return released


def grants_reconcile(*, now: datetime | None = None) -> dict[str, Any]:
    """Re-project every team's policy, public survey data and the audience groups (the hourly reconciler).

    Repairs what TOM's own forms may have changed (TOM's target form drops group
    permissions it did not list) and anything a lost task left behind.
    """
    from .teams import audience_members_sync

    now = now or clock.now()
    members = audience_members_sync()
    survey_data_grants_sync()
    teams = {}
    for group in Group.objects.filter(baton_team__isnull=False):
        result = policy_apply(team=group, now=now)
        teams[group.name] = {"released": result.released, "targets_added": result.target_grants_added,
                             "targets_removed": result.target_grants_removed}
    return {"members": members, "teams": teams}


def data_forget(*, instance: models.Model) -> None:
    """A datum was deleted: drop its ownership and the object permissions left on its id."""
    from guardian.models import GroupObjectPermission, UserObjectPermission

    ct = ContentType.objects.get_for_model(instance)
    DataOwnership.objects.filter(content_type=ct, object_id=instance.pk).delete()
    GroupObjectPermission.objects.filter(content_type=ct, object_pk=str(instance.pk)).delete()
    UserObjectPermission.objects.filter(content_type=ct, object_pk=str(instance.pk)).delete()


def uploaded_datum_record(*, datum: Any, user: Any) -> DataOwnership | None:
    """Record the team of ``user``, who uploaded ``datum`` through TOM's API (a partner TOM's ``DATA_SHARING``, a
    script), as its owner, so its members see it as their policy says and other teams do not.

    The user's only team owns it; a user in no team or in several, or a datum of a kind teams do not own, leaves it
    as TOM leaves it. Old data arriving late is backfill, not a breach of the release rules. Returns the ownership
    recorded, or None.
    """
    from tom_dataproducts.models import PhotometryReducedDatum, SpectroscopyReducedDatum

    from ..selectors import teams_of

    kind = {PhotometryReducedDatum: "photometry", SpectroscopyReducedDatum: "spectra"}.get(type(datum))
    teams = list(teams_of(user=user)[:2])
    if kind is None or len(teams) != 1:
        return None
    rows = data_record_ownership(data=[datum], team=teams[0].group, kind=kind, backfill=True)
    return rows[0] if rows else None
