"""Vectorised visibility engine: altitude, airmass, Sun, Moon and observable windows.

For N targets x S sites x T times this module computes, without a Python loop
over targets or sites:

- the apparent altitude of every target (no refraction) and its airmass,
- the topocentric altitude of the Sun and of the Moon at every site,
- the topocentric Moon-target separation, and the Moon's illuminated fraction,
- which samples satisfy a set of observing `Constraints`, and the observable
  windows between two times, with edges refined well below the grid step.

Method. Everything that depends on time alone is computed once per time with
ERFA, as astropy does: the IAU 2006/2000A celestial-to-intermediate matrix,
the Earth rotation angle from UT1, the Earth's barycentric velocity and the
Sun from ``epv00``, the Moon from ``moon98``. Annual and diurnal aberration
are applied to first order in v/c. Neglected: polar motion (~0.3"), light
deflection by the Sun (under 0.1" more than 5 degrees from it, 1.75" at its
limb), refraction, and the targets' proper motion and parallax. The per
target x site x time work is then two matrix products: the aberrated
direction of a target is q = p(1 - p.b) + b (p its ICRS unit vector, b the
observer's velocity / c), so its projection onto a per-site-per-time unit
vector w (the zenith, the direction to the Moon) is a quadratic form in p,
which one (N, 10) @ (10, S*T) product evaluates for every target, site and
time at once.

Accuracy against astropy (``AltAz`` with ``pressure=0``, ``get_body``; see
``tests/observatories/test_visibility.py``), over the whole sky at seven
sites and dates across 2026-2027: altitude within 0.6" (1.6" for a target
0.25 degrees from the Sun), Sun and topocentric Moon altitude within 0.6",
Moon separation within 1.2", window edges within 1.2 s (median 0.02 s).
Edges at which a target barely grazes a limit are ill-conditioned for any
code: there an arcsecond moves the edge by tens of seconds.

Conventions: angles in degrees, distances in au where noted, times as astropy
`Time` (any scale in, UTC out). Array shapes are written (N, S, T) for
targets, sites, times.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import astropy.units as u
import erfa
import numpy as np
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time

from observatories.astro_offline import configure_offline_astropy

# The package __init__ does this too; repeated here (idempotent) so that the
# engine stays offline however it is imported.
configure_offline_astropy()

__all__ = [
    "Constraints",
    "VisibilityGrid",
    "VisibilityWindows",
    "compute_grid",
    "observable_windows",
]

# Earth rotation angle rate, radians per UT1 day (IERS Conventions 2010, eq. 5.15).
_ERA_RATE_RAD_PER_DAY = 2.0 * math.pi * 1.00273781191135448
# Precession-nutation and the Earth's orbital state are smooth on hour scales
# (nutation's shortest sizeable term has a period of 5.6 days), so they are
# evaluated on nodes at most this far apart and interpolated linearly; the
# interpolation error is below 0.001 arcsecond.
_NODE_SPACING_DAYS = 1.0 / 24.0
_MAX_STEP = 1.0 * u.hour
# Window edges are bisected until the bracket is this short.
_EDGE_RESOLUTION_S = 0.05
# observable_windows evaluates targets in blocks of at most this many samples
# (N_block * S * T), to bound memory (two float64 arrays of this size).
_BLOCK_SAMPLES = 4_000_000


@dataclass(frozen=True, kw_only=True)
class Constraints:
    """Observing constraints, all of which a sample must satisfy to be observable.

    Attributes:
        max_airmass: Largest acceptable airmass sec(z) (plane-parallel, as
            astroplan's ``AirmassConstraint``), >= 1, or None for no limit.
        min_moon_separation_deg: Smallest acceptable topocentric angular
            distance to the Moon, degrees, in [0, 180]; 0 disables it. As
            astroplan's ``MoonSeparationConstraint``, it applies whether or
            not the Moon is up.
        sun_max_alt_deg: Highest acceptable altitude of the Sun's centre,
            degrees (-18 astronomical, -12 nautical twilight), in [-90, 90].
        min_alt_deg: Lowest acceptable target altitude, degrees, in [0, 90),
            or None. A target below the horizon is never observable.
    """

    max_airmass: float | None = 2.0
    min_moon_separation_deg: float = 30.0
    sun_max_alt_deg: float = -12.0
    min_alt_deg: float | None = None

    def __post_init__(self) -> None:
        if self.max_airmass is not None and not (self.max_airmass >= 1.0):
            raise ValueError(f"max_airmass must be >= 1 or None, got {self.max_airmass!r}")
        if not (0.0 <= self.min_moon_separation_deg <= 180.0):
            raise ValueError(
                f"min_moon_separation_deg must be in [0, 180], got {self.min_moon_separation_deg!r}"
            )
        if not (-90.0 <= self.sun_max_alt_deg <= 90.0):
            raise ValueError(f"sun_max_alt_deg must be in [-90, 90], got {self.sun_max_alt_deg!r}")
        if self.min_alt_deg is not None and not (0.0 <= self.min_alt_deg < 90.0):
            raise ValueError(f"min_alt_deg must be in [0, 90) or None, got {self.min_alt_deg!r}")

    @property
    def min_sin_altitude(self) -> float:
        """Smallest acceptable sin(altitude) implied by the airmass and altitude limits."""
        floor = 0.0
        if self.max_airmass is not None:
            floor = max(floor, 1.0 / self.max_airmass)
        if self.min_alt_deg is not None:
            floor = max(floor, math.sin(math.radians(self.min_alt_deg)))
        return floor

    @property
    def max_cos_moon_separation(self) -> float:
        """Largest acceptable cos(Moon separation)."""
        return math.cos(math.radians(self.min_moon_separation_deg))


@dataclass(frozen=True, eq=False)
class _Ephemeris:
    """Per-time quantities for T times, in GCRS axes (internal)."""

    tt_jd1: np.ndarray  # (T,) TT Julian date, first part
    tt_jd2: np.ndarray  # (T,) TT Julian date, second part
    c2i: np.ndarray  # (T, 3, 3) GCRS -> CIRS matrix (IAU 2006/2000A)
    era: np.ndarray  # (T,) Earth rotation angle, rad
    ut1_days: np.ndarray  # (T,) UT1 days since the first time
    beta: np.ndarray  # (T, 3) Earth barycentric velocity / c
    sun: np.ndarray  # (T, 3) apparent geocentric Sun, au
    moon: np.ndarray  # (T, 3) apparent geocentric Moon, au

    def celestial_to_terrestrial(self) -> np.ndarray:
        """GCRS -> terrestrial (TIRS ~ ITRS without polar motion) matrices, (T, 3, 3)."""
        return _rz(self.era) @ self.c2i


@dataclass(frozen=True, eq=False)
class _Sites:
    """Site vectors in ITRS (internal)."""

    zenith: np.ndarray  # (S, 3) geodetic up unit vector
    position_au: np.ndarray  # (S, 3) geocentric position, au


@dataclass(frozen=True, eq=False)
class VisibilityGrid:
    """Visibility of N targets at S sites over T times (from `compute_grid`).

    The two (N, S, T) arrays are stored as sines and cosines so that
    `observable` compares them with thresholds without any trigonometry; the
    angle-valued views are computed on first access.

    Attributes:
        times: The T sample times, as given.
        sin_altitude: (N, S, T) sine of each target's apparent altitude
            (aberrated, no refraction); dimensionless, to ~1e-8.
        cos_moon_separation: (N, S, T) cosine of the angle between each
            target and the topocentric Moon; dimensionless.
        sun_altitude_deg: (S, T) topocentric altitude of the Sun's centre, deg.
        moon_altitude_deg: (S, T) topocentric altitude of the Moon's centre, deg.
        moon_illumination: (T,) illuminated fraction of the Moon's disc, 0..1.
    """

    times: Time
    sin_altitude: np.ndarray
    cos_moon_separation: np.ndarray
    sun_altitude_deg: np.ndarray
    moon_altitude_deg: np.ndarray
    moon_illumination: np.ndarray
    # ICRS unit vectors (N, 3) and the Earth's velocity / c (T, 3), kept for
    # the angle views below.
    _target_vectors: np.ndarray = field(repr=False)
    _earth_beta: np.ndarray = field(repr=False)

    @cached_property
    def _aberrated_norm(self) -> np.ndarray:
        """(N, T) length |q| = sqrt(1 + b^2 - (p.b)^2) = 1 + O(1e-8) of the aberrated direction.

        sin_altitude and cos_moon_separation are projections of q; dividing
        by |q| makes the angle views exact near the zenith and the Moon,
        where arcsin and arccos magnify a 1e-8 error to 20". The diurnal
        part of b (1.5e-6) changes |q| by ~1e-10 and is left out.
        """
        p_dot_beta = self._target_vectors @ self._earth_beta.T
        beta_sq = np.sum(self._earth_beta * self._earth_beta, axis=-1)
        return np.sqrt(1.0 + beta_sq[None, :] - p_dot_beta * p_dot_beta)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(N, S, T): numbers of targets, sites and times."""
        n, s, t = self.sin_altitude.shape
        return n, s, t

    @cached_property
    def altitude_deg(self) -> np.ndarray:
        """(N, S, T) apparent altitude of each target, degrees, without refraction."""
        sin_alt = self.sin_altitude / self._aberrated_norm[:, None, :]
        return np.degrees(np.arcsin(np.clip(sin_alt, -1.0, 1.0)))

    @cached_property
    def airmass(self) -> np.ndarray:
        """(N, S, T) plane-parallel airmass sec(z) = 1/sin(alt); inf at or below the horizon."""
        with np.errstate(divide="ignore"):
            return np.where(self.sin_altitude > 0.0, 1.0 / self.sin_altitude, np.inf)

    @cached_property
    def moon_separation_deg(self) -> np.ndarray:
        """(N, S, T) angle between each target and the topocentric Moon, degrees."""
        cos_sep = self.cos_moon_separation / self._aberrated_norm[:, None, :]
        return np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0)))

    def observable(self, *, constraints: Constraints) -> np.ndarray:
        """Return a bool array (N, S, T): True where every constraint holds.

        A sample is observable when the target's sin(altitude) reaches
        ``constraints.min_sin_altitude`` (airmass and altitude limits, never
        below the horizon), the Sun is at or below ``sun_max_alt_deg`` and the
        Moon is at least ``min_moon_separation_deg`` away.
        """
        ok = np.greater_equal(self.sin_altitude, constraints.min_sin_altitude)
        sun_ok = self.sun_altitude_deg <= constraints.sun_max_alt_deg
        np.logical_and(ok, sun_ok[None, :, :], out=ok)
        if constraints.min_moon_separation_deg > 0.0:
            moon_ok = np.less_equal(self.cos_moon_separation, constraints.max_cos_moon_separation)
            np.logical_and(ok, moon_ok, out=ok)
        return ok


@dataclass(frozen=True, eq=False)
class VisibilityWindows:
    """Observable windows of N targets at S sites (from `observable_windows`).

    Window k is target ``target_index[k]`` at site ``site_index[k]`` from
    ``start[k]`` to ``end[k]``. Windows are sorted by target, then site, then
    start. A window that is open at the start (end) of the searched range
    starts (ends) exactly there.

    Attributes:
        target_index: (W,) int index into the targets given.
        site_index: (W,) int index into the sites given.
        start: (W,) window starts, UTC.
        end: (W,) window ends, UTC.
        n_targets: N.
        n_sites: S.
    """

    target_index: np.ndarray
    site_index: np.ndarray
    start: Time
    end: Time
    n_targets: int
    n_sites: int

    def __len__(self) -> int:
        return int(self.target_index.size)

    @property
    def duration(self) -> u.Quantity:
        """(W,) length of each window, in hours."""
        return (self.end - self.start).to(u.hour)

    def for_pair(self, *, target: int, site: int) -> list[tuple[Time, Time]]:
        """Return the windows of one (target, site) pair, as (start, end) UTC times, in order."""
        if not (0 <= target < self.n_targets and 0 <= site < self.n_sites):
            raise ValueError(
                f"(target, site) = ({target}, {site}) out of range "
                f"({self.n_targets} targets, {self.n_sites} sites)"
            )
        keys = self.target_index * self.n_sites + self.site_index
        key = target * self.n_sites + site
        lo, hi = np.searchsorted(keys, [key, key + 1])
        starts, ends = self.start[lo:hi], self.end[lo:hi]
        return [(starts[k], ends[k]) for k in range(hi - lo)]


def compute_grid(*, targets: SkyCoord, sites: EarthLocation, times: Time) -> VisibilityGrid:
    """Compute target, Sun and Moon geometry for every target x site x time.

    Args:
        targets: N targets (any celestial frame; flattened). Treated as
            directions at infinity: proper motion and parallax are ignored.
        sites: S observatory locations (flattened).
        times: T strictly increasing times (any scale; UT1 from the bundled
            IERS tables).

    Returns:
        A `VisibilityGrid` with (N, S, T), (S, T) and (T,) arrays.

    Raises:
        ValueError: if any input is empty or the times are not strictly increasing.
        TypeError: if an input is not of the astropy type named above.
    """
    p = _target_vectors(targets)
    site_vectors = _site_vectors(sites)
    flat_times = _checked_times(times)
    eph = _ephemeris(flat_times)
    return _grid(eph=eph, sites=site_vectors, p=p, times=flat_times)


def observable_windows(
    *,
    targets: SkyCoord,
    sites: EarthLocation,
    start: Time,
    end: Time,
    constraints: Constraints,
    step: u.Quantity = 5 * u.min,
) -> VisibilityWindows:
    """Find when each target is observable from each site between two times.

    The constraints are sampled on a uniform grid from ``start`` to ``end``
    (inclusive) with spacing at most ``step``; every change of state between
    two samples is then bisected to 0.05 s with the per-time quantities
    interpolated between the samples, so edges agree with astropy to about a
    second. A window shorter than ``step`` that falls between two samples may
    be missed.

    Args:
        targets: N targets (flattened).
        sites: S sites (flattened).
        start: Scalar start of the range.
        end: Scalar end of the range, after ``start``.
        constraints: The constraints every observable instant satisfies.
        step: Grid spacing, a time Quantity in (0, 1 h].

    Returns:
        A `VisibilityWindows` with all windows, sorted by target, site, start.

    Raises:
        ValueError: for empty targets or sites, non-scalar start or end,
            ``end <= start``, or a step that is not in (0, 1 h].
    """
    p = _target_vectors(targets)
    site_vectors = _site_vectors(sites)
    times = _range_times(start=start, end=end, step=step)
    eph = _ephemeris(times)
    n_targets, n_sites, n_times = p.shape[0], site_vectors.zenith.shape[0], times.size

    block = max(1, _BLOCK_SAMPLES // (n_sites * n_times))
    pieces = []
    for first in range(0, n_targets, block):
        grid = _grid(eph=eph, sites=site_vectors, p=p[first : first + block], times=times)
        ok = grid.observable(constraints=constraints)
        pieces.append(
            _windows_from_samples(
                ok=ok, first_target=first, p=p, eph=eph, sites=site_vectors, constraints=constraints
            )
        )
    target_index = np.concatenate([piece[0] for piece in pieces])
    site_index = np.concatenate([piece[1] for piece in pieces])
    start_jd2 = np.concatenate([piece[2] for piece in pieces])
    end_jd2 = np.concatenate([piece[3] for piece in pieces])
    # All edges are stored as offsets from the first sample's TT date, so one
    # Time construction (and one scale conversion) serves every window.
    jd1 = np.full(start_jd2.shape, eph.tt_jd1[0])
    return VisibilityWindows(
        target_index=target_index,
        site_index=site_index,
        start=Time(jd1, start_jd2, format="jd", scale="tt").utc,
        end=Time(jd1, end_jd2, format="jd", scale="tt").utc,
        n_targets=n_targets,
        n_sites=n_sites,
    )


# --------------------------------------------------------------------------
# Input checks


def _target_vectors(targets: SkyCoord) -> np.ndarray:
    """ICRS unit vectors of the targets, (N, 3)."""
    if not isinstance(targets, SkyCoord):
        raise TypeError(f"targets must be a SkyCoord, got {type(targets).__name__}")
    if targets.size == 0:
        raise ValueError("targets is empty: give at least one target")
    icrs = targets.icrs
    ra = np.ravel(icrs.ra.to_value(u.rad))
    dec = np.ravel(icrs.dec.to_value(u.rad))
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise ValueError("targets contain non-finite coordinates")
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def _site_vectors(sites: EarthLocation) -> _Sites:
    """Geodetic zenith unit vectors and geocentric positions of the sites."""
    if not isinstance(sites, EarthLocation):
        raise TypeError(f"sites must be an EarthLocation, got {type(sites).__name__}")
    if sites.size == 0:
        raise ValueError("sites is empty: give at least one site")
    position = np.stack(
        [np.ravel(sites.x.to_value(u.m)), np.ravel(sites.y.to_value(u.m)), np.ravel(sites.z.to_value(u.m))],
        axis=-1,
    )
    if not np.all(np.isfinite(position)):
        raise ValueError("sites contain non-finite coordinates")
    # WGS84 geodetic coordinates, as astropy's AltAz uses (ERFA directly:
    # EarthLocation.to_geodetic costs milliseconds in Quantity overhead).
    lon, lat, _ = erfa.gc2gd(erfa.WGS84, position)
    zenith = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    return _Sites(zenith=zenith, position_au=position / erfa.DAU)


def _checked_times(times: Time) -> Time:
    """The times flattened to 1-D, after checking they are non-empty and increasing."""
    if not isinstance(times, Time):
        raise TypeError(f"times must be an astropy Time, got {type(times).__name__}")
    if times.size == 0:
        raise ValueError("times is empty: give at least one time")
    flat = times.ravel() if times.ndim else times.reshape((1,))
    tt = flat.tt
    if np.any(np.diff(tt.jd1) + np.diff(tt.jd2) <= 0.0):
        raise ValueError("times must be strictly increasing")
    return flat


def _range_times(*, start: Time, end: Time, step: u.Quantity) -> Time:
    """A uniform grid from start to end inclusive, spacing at most step."""
    if not (isinstance(start, Time) and isinstance(end, Time)):
        raise TypeError("start and end must be astropy Time objects")
    if not (start.isscalar and end.isscalar):
        raise ValueError("start and end must be scalar times")
    if not isinstance(step, u.Quantity) or not step.unit.is_equivalent(u.s) or not step.isscalar:
        raise ValueError(f"step must be a scalar time Quantity, got {step!r}")
    step_s = float(step.to_value(u.s))
    if not (0.0 < step_s <= _MAX_STEP.to_value(u.s)):
        raise ValueError(f"step must be in (0, {_MAX_STEP}], got {step}")
    span_s = float((end - start).to_value(u.s))
    if not (span_s > 0.0):
        raise ValueError(f"end ({end.isot}) must be after start ({start.isot})")
    n_steps = max(1, math.ceil(span_s / step_s - 1e-9))
    offsets = np.linspace(0.0, span_s, n_steps + 1) * u.s
    return start.tt + offsets


# --------------------------------------------------------------------------
# Per-time work (T)


def _rz(angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about z by the given angles (ERFA's ``rz`` convention), (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.zeros(np.shape(angle) + (3, 3))
    r[..., 0, 0] = c
    r[..., 0, 1] = s
    r[..., 1, 0] = -s
    r[..., 1, 1] = c
    r[..., 2, 2] = 1.0
    return r


def _ephemeris(times: Time) -> _Ephemeris:
    """Precession-nutation, Earth rotation, Earth velocity, Sun and Moon for each time."""
    tt = times.tt
    jd1, jd2 = np.asarray(tt.jd1, dtype=float), np.asarray(tt.jd2, dtype=float)
    ut1 = times.ut1
    era = erfa.era00(ut1.jd1, ut1.jd2)
    ut1_days = (ut1.jd1 - ut1.jd1[0]) + (ut1.jd2 - ut1.jd2[0])

    days = (jd1 - jd1[0]) + (jd2 - jd2[0])
    n_nodes = math.ceil(days[-1] / _NODE_SPACING_DAYS) + 1
    # TDB - TT is below 2 ms, so TT is used for the Earth's orbit and the Moon.
    if n_nodes < days.size:
        node_days = np.linspace(0.0, days[-1], n_nodes)
        c2i_nodes = erfa.c2i06a(jd1[0], jd2[0] + node_days)
        pvh, pvb = erfa.epv00(jd1[0], jd2[0] + node_days)

        def _interp(values: np.ndarray) -> np.ndarray:
            flat = values.reshape(n_nodes, -1)
            out = np.empty((days.size, flat.shape[1]))
            for k in range(flat.shape[1]):
                out[:, k] = np.interp(days, node_days, flat[:, k])
            return out.reshape((days.size,) + values.shape[1:])

        c2i = _interp(c2i_nodes)
        earth_helio = _interp(pvh["p"])
        earth_velocity = _interp(pvb["v"])
    else:
        c2i = erfa.c2i06a(jd1, jd2)
        pvh, pvb = erfa.epv00(jd1, jd2)
        earth_helio, earth_velocity = pvh["p"], pvb["v"]

    beta = earth_velocity / erfa.DC
    # The Sun: geometric direction from the Earth, then annual aberration
    # (ERFA's ab, with the Sun's gravitational term), as astropy's get_body.
    sun_distance = np.linalg.norm(earth_helio, axis=-1)
    sun_dir = -earth_helio / sun_distance[:, None]
    bm1 = np.sqrt(1.0 - np.sum(beta * beta, axis=-1))
    sun = erfa.ab(sun_dir, beta, sun_distance, bm1) * sun_distance[:, None]
    # The Moon: geocentric position at the time the light left it. Its annual
    # aberration cancels against the Earth's motion during the light time (the
    # Moon travels with the Earth), which is what astropy's get_body yields.
    moon_pv = erfa.moon98(jd1, jd2)
    moon_light_time = np.linalg.norm(moon_pv["p"], axis=-1) / erfa.DC
    moon = moon_pv["p"] - moon_pv["v"] * moon_light_time[:, None]
    return _Ephemeris(
        tt_jd1=jd1,
        tt_jd2=jd2,
        c2i=c2i,
        era=np.asarray(era, dtype=float),
        ut1_days=np.asarray(ut1_days, dtype=float),
        beta=beta,
        sun=sun,
        moon=moon,
    )


# --------------------------------------------------------------------------
# Per target x site x time work


@functools.cache
def _blas_controller() -> Any:
    """A threadpoolctl controller for the loaded BLAS, or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Run the enclosed matrix products on one BLAS thread.

    The (N, 10) @ (10, S*T) products are memory-bound: a second BLAS thread
    saves little on an idle machine but makes them up to ten times slower
    when another process holds the other core (measured on the 2-core
    development machine). Celery gets its parallelism from processes anyway.
    """
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def _target_features(p: np.ndarray) -> np.ndarray:
    """(N, 10) monomials of p: x, y, z, x^2, y^2, z^2, xy, xz, yz, 1."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    return np.stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z, np.ones_like(x)], axis=-1)


def _diurnal_beta(*, c2i: np.ndarray, site_gcrs: np.ndarray) -> np.ndarray:
    """Velocity / c of sites due to the Earth's rotation, in GCRS axes (..., 3).

    ``c2i`` (..., 3, 3) has the celestial intermediate pole (the rotation
    axis) in GCRS as its last row; ``site_gcrs`` (..., 3) is in au.
    """
    pole = c2i[..., 2, :]
    return np.cross(pole, site_gcrs) * (_ERA_RATE_RAD_PER_DAY / erfa.DC)


def _aberrated_projection_weights(w: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """(10, S*T) weights so that features(p) @ weights = q . w for q = p(1 - p.b) + b.

    ``w`` is (S, T, 3) unit vectors, ``beta`` (S, T, 3) the observer's
    velocity / c. Expanding q . w = p.w - (p.w)(p.b) + w.b gives a quadratic
    form in p.
    """
    b = np.broadcast_to(beta, w.shape)
    wx, wy, wz = w[..., 0], w[..., 1], w[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    rows = [
        wx,
        wy,
        wz,
        -wx * bx,
        -wy * by,
        -wz * bz,
        -(wx * by + wy * bx),
        -(wx * bz + wz * bx),
        -(wy * bz + wz * by),
        wx * bx + wy * by + wz * bz,
    ]
    return np.stack([row.reshape(-1) for row in rows], axis=0)


def _grid(*, eph: _Ephemeris, sites: _Sites, p: np.ndarray, times: Time) -> VisibilityGrid:
    """Evaluate the grid for target vectors p (N, 3) from precomputed per-time data."""
    n_targets, n_sites, n_times = p.shape[0], sites.zenith.shape[0], eph.era.size
    c2t = eph.celestial_to_terrestrial()  # (T, 3, 3)
    # Rows of c2t map GCRS to terrestrial axes, so c2t^T maps a terrestrial
    # vector (the zenith, the site position) into GCRS: (S, T, 3).
    zenith = np.einsum("tji,sj->sti", c2t, sites.zenith)
    site_gcrs = np.einsum("tji,sj->sti", c2t, sites.position_au)

    beta = eph.beta[None, :, :] + _diurnal_beta(c2i=eph.c2i[None, :, :, :], site_gcrs=site_gcrs)

    sun_topo = eph.sun[None, :, :] - site_gcrs
    sun_sin_alt = np.sum(sun_topo * zenith, axis=-1) / np.linalg.norm(sun_topo, axis=-1)
    moon_topo = eph.moon[None, :, :] - site_gcrs
    moon_dir = moon_topo / np.linalg.norm(moon_topo, axis=-1)[..., None]
    moon_sin_alt = np.sum(moon_dir * zenith, axis=-1)

    features = _target_features(p)
    with _one_blas_thread():
        sin_alt = features @ _aberrated_projection_weights(zenith, beta)
        cos_moon = features @ _aberrated_projection_weights(moon_dir, beta)

    return VisibilityGrid(
        times=times,
        sin_altitude=sin_alt.reshape(n_targets, n_sites, n_times),
        cos_moon_separation=cos_moon.reshape(n_targets, n_sites, n_times),
        sun_altitude_deg=np.degrees(np.arcsin(np.clip(sun_sin_alt, -1.0, 1.0))),
        moon_altitude_deg=np.degrees(np.arcsin(np.clip(moon_sin_alt, -1.0, 1.0))),
        moon_illumination=_moon_illumination(sun=eph.sun, moon=eph.moon),
        _target_vectors=p,
        _earth_beta=eph.beta,
    )


def _moon_illumination(*, sun: np.ndarray, moon: np.ndarray) -> np.ndarray:
    """(T,) illuminated fraction from geocentric Sun and Moon vectors (as astroplan)."""
    sun_distance = np.linalg.norm(sun, axis=-1)
    moon_distance = np.linalg.norm(moon, axis=-1)
    cos_elong = np.clip(np.sum(sun * moon, axis=-1) / (sun_distance * moon_distance), -1.0, 1.0)
    sin_elong = np.sqrt(1.0 - cos_elong * cos_elong)
    phase_angle = np.arctan2(sun_distance * sin_elong, moon_distance - sun_distance * cos_elong)
    return (1.0 + np.cos(phase_angle)) / 2.0


# --------------------------------------------------------------------------
# Windows


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of (..., 3) arrays."""
    return np.einsum("...i,...i->...", a, b)


@dataclass(frozen=True, eq=False)
class _EdgeBrackets:
    """E (target, site) edges, each between two consecutive samples (internal).

    Holds, per edge, the per-time quantities at the bracket's first sample
    and their change to the next one, gathered once so that each bisection
    step only interpolates and projects.
    """

    p: np.ndarray  # (E, 3) target ICRS unit vectors
    zenith: np.ndarray  # (E, 3) site zenith, terrestrial axes
    position: np.ndarray  # (E, 3) site position, terrestrial axes, au
    era: np.ndarray  # (E,) Earth rotation angle at the first sample, rad
    era_step: np.ndarray  # (E,) its change to the next sample (from UT1, exact)
    c2i: np.ndarray  # (E, 3, 3) and its step, likewise for the vectors below
    c2i_step: np.ndarray
    beta: np.ndarray
    beta_step: np.ndarray
    sun: np.ndarray
    sun_step: np.ndarray
    moon: np.ndarray
    moon_step: np.ndarray

    @classmethod
    def gather(
        cls, *, eph: _Ephemeris, sites: _Sites, p: np.ndarray, site: np.ndarray, index: np.ndarray
    ) -> _EdgeBrackets:
        """Edges of targets ``p`` (E, 3) at sites ``site`` between samples ``index`` and ``index + 1``."""
        i, j = index, index + 1
        return cls(
            p=p,
            zenith=sites.zenith[site],
            position=sites.position_au[site],
            era=eph.era[i],
            era_step=(eph.ut1_days[j] - eph.ut1_days[i]) * _ERA_RATE_RAD_PER_DAY,
            c2i=eph.c2i[i],
            c2i_step=eph.c2i[j] - eph.c2i[i],
            beta=eph.beta[i],
            beta_step=eph.beta[j] - eph.beta[i],
            sun=eph.sun[i],
            sun_step=eph.sun[j] - eph.sun[i],
            moon=eph.moon[i],
            moon_step=eph.moon[j] - eph.moon[i],
        )

    def observable(self, *, frac: np.ndarray, constraints: Constraints) -> np.ndarray:
        """Evaluate the constraints (E,) at ``frac`` (E,) of the way through each bracket.

        The per-time quantities are interpolated linearly (the Earth rotation
        angle exactly, as it is linear in UT1), which over an hour's step is
        good to milliarcseconds.
        """
        f = frac[:, None]
        era = self.era + frac * self.era_step
        c2i = self.c2i + self.c2i_step * f[:, :, None]
        # Terrestrial -> CIRS is a rotation by -ERA about the pole; CIRS ->
        # GCRS is the transpose of c2i.
        cos_era, sin_era = np.cos(era)[:, None], np.sin(era)[:, None]

        def to_gcrs(v: np.ndarray) -> np.ndarray:
            cirs = np.stack(
                [
                    cos_era[:, 0] * v[:, 0] - sin_era[:, 0] * v[:, 1],
                    sin_era[:, 0] * v[:, 0] + cos_era[:, 0] * v[:, 1],
                    v[:, 2],
                ],
                axis=-1,
            )
            return np.einsum("eji,ej->ei", c2i, cirs)

        zenith = to_gcrs(self.zenith)
        site_gcrs = to_gcrs(self.position)
        beta = self.beta + self.beta_step * f + _diurnal_beta(c2i=c2i, site_gcrs=site_gcrs)

        q = self.p * (1.0 - _dot(self.p, beta))[:, None] + beta
        q /= np.sqrt(_dot(q, q))[:, None]
        ok = _dot(q, zenith) >= constraints.min_sin_altitude

        sun_topo = self.sun + self.sun_step * f - site_gcrs
        sun_sin_alt = _dot(sun_topo, zenith) / np.sqrt(_dot(sun_topo, sun_topo))
        ok &= sun_sin_alt <= math.sin(math.radians(constraints.sun_max_alt_deg))
        if constraints.min_moon_separation_deg > 0.0:
            moon_topo = self.moon + self.moon_step * f - site_gcrs
            cos_sep = _dot(q, moon_topo) / np.sqrt(_dot(moon_topo, moon_topo))
            ok &= cos_sep <= constraints.max_cos_moon_separation
        return ok


def _windows_from_samples(
    *,
    ok: np.ndarray,
    first_target: int,
    p: np.ndarray,
    eph: _Ephemeris,
    sites: _Sites,
    constraints: Constraints,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Turn a sampled bool array (n, S, T) into windows with bisected edges.

    Returns (target index, site index, start, end), the times as TT Julian
    date offsets from ``eph.tt_jd1[0]``.
    """
    n_times = ok.shape[2]
    day_offsets = (eph.tt_jd1 - eph.tt_jd1[0]) + eph.tt_jd2

    change = ok[:, :, 1:] != ok[:, :, :-1]
    tgt, site, index = np.nonzero(change)
    rising = ok[tgt, site, index + 1]
    edge_time = _bisect_edges(
        eph=eph,
        sites=sites,
        p=p[first_target + tgt],
        site=site,
        index=index,
        rising=rising,
        constraints=constraints,
        day_offsets=day_offsets,
    )

    first_tgt, first_site = np.nonzero(ok[:, :, 0])
    last_tgt, last_site = np.nonzero(ok[:, :, -1])
    n_sites = ok.shape[1]

    # Starts: open at the first sample (order -1) or a rising edge (order i);
    # ends: a falling edge (order i) or open at the last sample (order T).
    start_key = np.concatenate([first_tgt * n_sites + first_site, (tgt * n_sites + site)[rising]])
    start_order = np.concatenate([np.full(first_tgt.size, -1), index[rising]])
    start_time = np.concatenate([np.full(first_tgt.size, day_offsets[0]), edge_time[rising]])
    end_key = np.concatenate([(tgt * n_sites + site)[~rising], last_tgt * n_sites + last_site])
    end_order = np.concatenate([index[~rising], np.full(last_tgt.size, n_times)])
    end_time = np.concatenate([edge_time[~rising], np.full(last_tgt.size, day_offsets[-1])])

    start_sort = np.lexsort((start_order, start_key))
    end_sort = np.lexsort((end_order, end_key))
    key = start_key[start_sort]
    return (
        first_target + key // n_sites,
        key % n_sites,
        start_time[start_sort],
        end_time[end_sort],
    )


def _bisect_edges(
    *,
    eph: _Ephemeris,
    sites: _Sites,
    p: np.ndarray,
    site: np.ndarray,
    index: np.ndarray,
    rising: np.ndarray,
    constraints: Constraints,
    day_offsets: np.ndarray,
) -> np.ndarray:
    """Bisect each state change between samples ``index`` and ``index + 1``.

    Returns the edge times as TT Julian-date offsets (days) from the first
    sample's ``jd1``.
    """
    lo = np.zeros(index.size)
    hi = np.ones(index.size)
    if index.size:
        brackets = _EdgeBrackets.gather(eph=eph, sites=sites, p=p, site=site, index=index)
        interval_s = float(np.max(np.diff(day_offsets))) * 86400.0
        n_iter = max(1, math.ceil(math.log2(interval_s / _EDGE_RESOLUTION_S)))
        for _ in range(n_iter):
            mid = 0.5 * (lo + hi)
            state = brackets.observable(frac=mid, constraints=constraints)
            # Before a rising edge the state is False; before a falling one, True.
            before_edge = state != rising
            lo = np.where(before_edge, mid, lo)
            hi = np.where(before_edge, hi, mid)
    frac = 0.5 * (lo + hi)
    return day_offsets[index] + frac * (day_offsets[index + 1] - day_offsets[index])
