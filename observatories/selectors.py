"""Reads of the facility network: current facility status (with staleness), day/night, visibility for plots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings

from observatories.models import Facility, FacilityStatus, Site

# Sun altitude limits (deg) for the network page's day / twilight / night.
NIGHT_SUN_ALT_DEG = -12.0


@dataclass(frozen=True)
class CurrentStatus:
    """A facility's state as Baton believes it now.

    ``state`` is one of available / weather / downtime / unknown; a status older
    than ``OBSERVATORIES_STATUS_STALE_AFTER_S`` (by ``fetched_at``) is reported
    as unknown with ``stale`` set and the old state in the reason. No status
    yet: unknown, with no times.
    """

    state: str
    reason: str
    observed_at: datetime | None
    fetched_at: datetime | None
    stale: bool


def _current_from_row(row: FacilityStatus | None, *, now: datetime) -> CurrentStatus:
    if row is None:
        return CurrentStatus(state="unknown", reason="no status received yet", observed_at=None, fetched_at=None, stale=False)
    max_age = timedelta(seconds=settings.OBSERVATORIES_STATUS_STALE_AFTER_S)
    if now - row.fetched_at > max_age:
        age_min = (now - row.fetched_at).total_seconds() / 60.0
        return CurrentStatus(
            state="unknown",
            reason=f"stale: last status ({row.state}: {row.reason}) is {age_min:.0f} min old",
            observed_at=row.observed_at,
            fetched_at=row.fetched_at,
            stale=True,
        )
    return CurrentStatus(state=row.state, reason=row.reason, observed_at=row.observed_at, fetched_at=row.fetched_at, stale=False)


def facility_status_latest(*, facility: Facility) -> FacilityStatus | None:
    """The most recently fetched status row of ``facility`` (stale or not), or None."""
    return FacilityStatus.objects.filter(facility=facility).order_by("-fetched_at", "-id").first()


def facility_status_current(*, facility: Facility, now: datetime) -> CurrentStatus:
    """The facility's current state considering staleness (see `CurrentStatus`)."""
    return _current_from_row(facility_status_latest(facility=facility), now=now)


def facility_statuses_current(*, facilities: Iterable[Facility], now: datetime) -> dict[int, CurrentStatus]:
    """`facility_status_current` for many facilities in one query: facility id -> status."""
    ids = [f.pk for f in facilities]
    latest = (
        FacilityStatus.objects.filter(facility_id__in=ids)
        .order_by("facility_id", "-fetched_at", "-id")
        .distinct("facility_id")
    )
    by_facility = {row.facility_id: row for row in latest}
    return {pk: _current_from_row(by_facility.get(pk), now=now) for pk in ids}


def sites_sun_altitude(*, sites: Sequence[Site], at: datetime) -> dict[int, float]:
    """Site id -> the Sun's altitude (deg) there at ``at``."""
    if not sites:
        return {}
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    from observatories.visibility import compute_grid

    grid = compute_grid(targets=SkyCoord([0.0] * u.deg, [0.0] * u.deg), sites=site_locations(sites=sites), times=Time([at]))
    return {site.pk: float(grid.sun_altitude_deg[i, 0]) for i, site in enumerate(sites)}


def day_phase(sun_altitude_deg: float) -> str:
    """'night' (Sun below -12 deg), 'twilight' (below the horizon) or 'day'."""
    if sun_altitude_deg <= NIGHT_SUN_ALT_DEG:
        return "night"
    return "twilight" if sun_altitude_deg < 0.0 else "day"


def site_locations(*, sites: Sequence[Site]):  # type: ignore[no-untyped-def]  # astropy has no stubs
    """The sites as one astropy ``EarthLocation`` array (geodetic, WGS84)."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation

    return EarthLocation.from_geodetic(
        [s.longitude_deg for s in sites] * u.deg,
        [s.latitude_deg for s in sites] * u.deg,
        [s.elevation_m for s in sites] * u.m,
    )


@dataclass(frozen=True)
class SiteRow:
    """One site on the network page: its facilities with their current status, and day or night now."""

    site: Site
    sun_altitude_deg: float
    phase: str
    facilities: list[tuple[Facility, CurrentStatus]]


def network_overview(*, now: datetime) -> list[SiteRow]:
    """Every site with its enabled facilities, their current status and the site's day/night now."""
    sites = list(Site.objects.prefetch_related("facilities").order_by("continent", "code"))
    facilities = [f for s in sites for f in s.facilities.all() if f.enabled]
    statuses = facility_statuses_current(facilities=facilities, now=now)
    sun = sites_sun_altitude(sites=sites, at=now)
    rows = []
    for site in sites:
        mine = [(f, statuses[f.pk]) for f in site.facilities.all() if f.enabled]
        rows.append(SiteRow(site=site, sun_altitude_deg=sun[site.pk], phase=day_phase(sun[site.pk]), facilities=mine))
    return rows


@dataclass(frozen=True)
class NetworkVisibility:
    """A target's altitude at every site over a time range, for plotting.

    ``altitude_deg`` and ``sun_altitude_deg`` are (S, T) arrays in degrees;
    ``times`` are the T sample times (UTC).
    """

    sites: list[Site]
    times: list[datetime]
    altitude_deg: np.ndarray
    sun_altitude_deg: np.ndarray


def target_network_visibility(
    *, ra_deg: float, dec_deg: float, start: datetime, hours: float = 24.0, step_min: float = 10.0,
    sites: Sequence[Site] | None = None,
) -> NetworkVisibility:
    """The target's altitude and the Sun's at each site from ``start`` for ``hours`` (one vectorised call)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    from observatories.visibility import compute_grid

    chosen = list(sites) if sites is not None else list(Site.objects.filter(facilities__enabled=True).distinct().order_by("longitude_deg"))
    n = int(hours * 60 / step_min) + 1
    times = [start + timedelta(minutes=step_min * k) for k in range(n)]
    if not chosen:
        return NetworkVisibility(sites=[], times=times, altitude_deg=np.zeros((0, n)), sun_altitude_deg=np.zeros((0, n)))
    grid = compute_grid(
        targets=SkyCoord([ra_deg] * u.deg, [dec_deg] * u.deg), sites=site_locations(sites=chosen), times=Time(times)
    )
    return NetworkVisibility(sites=chosen, times=times, altitude_deg=grid.altitude_deg[0], sun_altitude_deg=grid.sun_altitude_deg)


def tonight_start(*, now: datetime) -> datetime:
    """Where "tonight" plots start: the current hour, UTC (the next 24 h cover every site's coming night)."""
    return now.replace(minute=0, second=0, microsecond=0)
