"""Stream filters (versioned predicates) and watch regions (indexed HEALPix cells), owned by a
team (``auth.Group``) or a user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from candidates.filtering import FilterInvalid, predicates_validate
from candidates.models import StreamFilter, StreamFilterVersion, WatchRegion, WatchRegionCell
from candidates.sky import RegionInvalid, region_cells

__all__ = [
    "FilterInvalid",
    "RegionInvalid",
    "filter_create",
    "filter_update",
    "region_create",
    "region_update",
]


def _owner_check(team: Group | None, owner: Any, *, error: type[ValueError]) -> None:
    if (team is None) == (owner is None):
        raise error("owner: give exactly one of a team or a user")


@transaction.atomic
def filter_create(
    *, name: str, predicates: Any, team: Group | None = None, owner: Any = None, created_by: Any = None,
    active: bool = True, now: datetime | None = None,
) -> StreamFilter:
    """Create a filter with its version 1; raises FilterInvalid (nothing written) on bad predicates."""
    _owner_check(team, owner, error=FilterInvalid)
    clean = predicates_validate(predicates)
    if not name or not name.strip():
        raise FilterInvalid("name: required")
    now = now or timezone.now()
    stream_filter = StreamFilter.objects.create(name=name.strip()[:100], team=team, owner=owner, active=active,
                                                created_at=now)
    StreamFilterVersion.objects.create(filter=stream_filter, version=1, predicates=clean, created_by=created_by,
                                       created_at=now)
    return stream_filter


@transaction.atomic
def filter_update(
    *, stream_filter: StreamFilter, predicates: Any = None, name: str | None = None, active: bool | None = None,
    created_by: Any = None, now: datetime | None = None,
) -> StreamFilterVersion:
    """Change a filter. New predicates make a new version (matches made before keep theirs);
    returns the current version."""
    locked = StreamFilter.objects.select_for_update().get(pk=stream_filter.pk)
    latest = locked.versions.order_by("-version").first()
    if name is not None:
        if not name.strip():
            raise FilterInvalid("name: required")
        locked.name = name.strip()[:100]
    if active is not None:
        locked.active = active
    locked.save()
    if predicates is not None:
        clean = predicates_validate(predicates)
        if latest is None or clean != latest.predicates:
            latest = StreamFilterVersion.objects.create(
                filter=locked, version=(latest.version + 1) if latest else 1, predicates=clean,
                created_by=created_by, created_at=now or timezone.now(),
            )
    assert latest is not None  # noqa: S101 - every filter is created with a version
    return latest


def _cells_replace(region: WatchRegion, cells: Any) -> None:
    WatchRegionCell.objects.filter(region=region).delete()
    WatchRegionCell.objects.bulk_create(
        [WatchRegionCell(region=region, uniq=int(uniq)) for uniq in cells], batch_size=5000
    )


@transaction.atomic
def region_create(
    *, name: str, kind: str, spec: Any, team: Group | None = None, owner: Any = None, active: bool = True,
    now: datetime | None = None,
) -> WatchRegion:
    """Create and index a watch region (see :func:`candidates.sky.region_cells`); raises RegionInvalid."""
    _owner_check(team, owner, error=RegionInvalid)
    if not name or not name.strip():
        raise RegionInvalid("name: required")
    cells, area, clean = region_cells(kind, spec)
    now = now or timezone.now()
    region = WatchRegion.objects.create(
        name=name.strip()[:100], kind=kind, spec=clean, team=team, owner=owner, area=area, active=active,
        created_at=now, updated_at=now,
    )
    _cells_replace(region, cells)
    return region


@transaction.atomic
def region_update(
    *, region: WatchRegion, kind: str | None = None, spec: Any = None, name: str | None = None,
    active: bool | None = None, now: datetime | None = None,
) -> WatchRegion:
    """Change a region; a new shape is re-indexed and bumps its version (matches keep theirs)."""
    locked = WatchRegion.objects.select_for_update().get(pk=region.pk)
    if name is not None:
        if not name.strip():
            raise RegionInvalid("name: required")
        locked.name = name.strip()[:100]
    if active is not None:
        locked.active = active
    if spec is not None or kind is not None:
        new_kind = kind or locked.kind
        cells, area, clean = region_cells(new_kind, spec if spec is not None else locked.spec)
        if new_kind != locked.kind or clean != locked.spec:
            locked.kind, locked.spec, locked.area = new_kind, clean, area
            locked.version += 1
            _cells_replace(locked, cells)
    locked.updated_at = now or timezone.now()
    locked.save()
    return locked
