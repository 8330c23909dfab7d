"""Read-side of `candidates`: what a user may see (their teams' and their own), light curves."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet

from candidates.models import AlertBatch, LightCurvePoint, Match, StreamFilter, WatchRegion


def team_ids_of(*, user: Any) -> list[int]:
    """Group ids of the Baton teams the user belongs to. Only a team (``policies.Team``) owns filters, regions
    and labels here: any other Django group (TOM's "Public", which every user joins) owns nothing, or its
    members could make the ingest show a private target to everybody."""
    from policies.selectors import team_group_ids_of

    if not getattr(user, "is_authenticated", False):
        return []
    return sorted(team_group_ids_of(user=user))


def team_groups_of(*, user: Any) -> QuerySet[Group]:
    """The groups of the Baton teams the user belongs to, by name (the pages' team choices)."""
    return Group.objects.filter(pk__in=team_ids_of(user=user)).order_by("name")


def _mine(user: Any) -> Q:
    return Q(team_id__in=team_ids_of(user=user)) | Q(owner_id=user.pk)


def matches_visible_to(*, user: Any) -> QuerySet[Match]:
    """Matches of the user's teams' filters and regions, and of the user's own on targets the door shows them
    (an alert at a team's private target matches a user's own region, but shows them neither it nor its name),
    newest first."""
    from policies.access import targets_visible_to

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Match.objects.none()
    own = Q(owner_id=user.pk, target__in=targets_visible_to(user=user).values("pk"))
    qs = Match.objects.all() if user.is_superuser else Match.objects.filter(Q(team_id__in=team_ids_of(user=user)) | own)
    return qs.select_related("candidate", "target", "filter", "filter_version", "region", "team").order_by(
        "-matched_at", "-id"
    )


def filters_visible_to(*, user: Any) -> QuerySet[StreamFilter]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return StreamFilter.objects.none()
    return StreamFilter.objects.filter(_mine(user)).order_by("name", "id")


def regions_visible_to(*, user: Any) -> QuerySet[WatchRegion]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return WatchRegion.objects.none()
    return WatchRegion.objects.filter(_mine(user)).order_by("name", "id")


def batch_visible_to(*, user: Any, batch_id: Any) -> AlertBatch | None:
    """A batch its sender (or staff) may read."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    qs = AlertBatch.objects.defer("body").filter(pk=batch_id)
    if not user.is_staff:
        qs = qs.filter(sender=user)
    return qs.first()


def lightcurves_for(*, target_ids: list[int]) -> dict[int, dict[str, list[tuple[Any, float, float | None]]]]:
    """Magnitude light curves per target and band: ``{target: {band: [(time, mag, err), ...]}}``, time-ordered."""
    curves: dict[int, dict[str, list[tuple[Any, float, float | None]]]] = defaultdict(lambda: defaultdict(list))
    rows = (
        LightCurvePoint.objects.filter(target_id__in=target_ids, mag__isnull=False)
        .order_by("target_id", "time")
        .values_list("target_id", "band", "time", "mag", "mag_err")
    )
    for target_id, band, time, mag, err in rows:
        curves[target_id][band].append((time, float(mag or 0.0), err))  # mag__isnull=False above
    return {k: dict(v) for k, v in curves.items()}
