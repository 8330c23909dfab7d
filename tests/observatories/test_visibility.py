"""The visibility engine against astropy's AltAz, get_body and astroplan, sample by sample."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import astropy.units as u
import numpy as np
import pytest
from astroplan import moon_illumination
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_body
from astropy.time import Time

from observatories.visibility import (
    Constraints,
    VisibilityGrid,
    VisibilityWindows,
    compute_grid,
    observable_windows,
)

ARCSEC = 1.0 / 3600.0

# Sites by their published coordinates (EarthLocation.of_site needs the
# internet): CTIO, Siding Spring, Sutherland, Teide, Haleakala, Wise, plus a
# high-latitude site to exercise circumpolar geometry.
SITE_TABLE = [
    # code, latitude deg, longitude deg (east +), elevation m
    ("lsc", -30.167, -70.805, 2198.0),
    ("coj", -31.273, 149.071, 1116.0),
    ("cpt", -32.381, 20.810, 1760.0),
    ("tfn", 28.300, -16.512, 2330.0),
    ("ogg", 20.707, -156.258, 3055.0),
    ("tlv", 30.596, 34.763, 875.0),
    ("high", 67.0, 26.6, 300.0),
]


def _sites(codes: list[str] | None = None) -> EarthLocation:
    rows = [row for row in SITE_TABLE if codes is None or row[0] in codes]
    return EarthLocation.from_geodetic(
        lon=[row[2] for row in rows] * u.deg,
        lat=[row[1] for row in rows] * u.deg,
        height=[row[3] for row in rows] * u.m,
    )


def _random_targets(n: int, seed: int) -> SkyCoord:
    """n targets uniform over the whole sky."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs")


def _times_spread(n: int, seed: int) -> Time:
    """n sorted random times over 2026 and 2027 (one per ~month)."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.uniform(0.0, 729.0, n))
    return Time("2026-01-01T00:00:00", scale="utc") + days * u.day


def _night_grid() -> Time:
    """A dense grid over one UTC day, 10-minute steps (exercises node interpolation)."""
    return Time("2027-08-10T00:00:00", scale="utc") + np.arange(0, 145) * 10 * u.min


@pytest.fixture(autouse=True)
def _quiet_astropy() -> Iterator[None]:
    # astropy warns about polar motion past the IERS table and about
    # non-commutative separations between frames; neither matters here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def targets() -> SkyCoord:
    return _random_targets(120, seed=20260101)


@pytest.fixture(scope="module", params=["spread_2026_2027", "one_day_dense"])
def grid_case(
    request: pytest.FixtureRequest, targets: SkyCoord
) -> tuple[Time, EarthLocation, VisibilityGrid]:
    times = _times_spread(24, seed=7) if request.param == "spread_2026_2027" else _night_grid()
    sites = _sites()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = compute_grid(targets=targets, sites=sites, times=times)
    return times, sites, grid


def _astropy_altaz(target: SkyCoord, times: Time, site: EarthLocation) -> SkyCoord:
    frame = AltAz(obstime=times[None, :], location=site, pressure=0.0 * u.hPa)
    return target[:, None].transform_to(frame)


# --------------------------------------------------------------------------
# Geometry against astropy


def test_grid_shapes(grid_case: tuple[Time, EarthLocation, VisibilityGrid], targets: SkyCoord) -> None:
    times, sites, grid = grid_case
    n, s, t = len(targets), len(sites), len(times)
    assert grid.shape == (n, s, t)
    assert grid.sin_altitude.shape == grid.cos_moon_separation.shape == (n, s, t)
    assert grid.altitude_deg.shape == grid.airmass.shape == grid.moon_separation_deg.shape == (n, s, t)
    assert grid.sun_altitude_deg.shape == grid.moon_altitude_deg.shape == (s, t)
    assert grid.moon_illumination.shape == (t,)


def test_altitude_matches_astropy_altaz(
    grid_case: tuple[Time, EarthLocation, VisibilityGrid], targets: SkyCoord
) -> None:
    times, sites, grid = grid_case
    errors = np.stack(
        [
            grid.altitude_deg[:, s, :] - _astropy_altaz(targets, times, sites[s]).alt.deg
            for s in range(len(sites))
        ],
        axis=1,
    )
    assert np.abs(errors).max() < 0.01  # the contract, over the whole sky
    # What the model achieves: polar motion (~0.3") is neglected, and so is the
    # Sun's light deflection, which reaches 1.75" at its limb.
    far_from_sun = get_body("sun", times)[None, :].separation(targets[:, None]).deg > 2.0
    assert np.abs(errors).max(axis=1)[far_from_sun].max() < 1.0 * ARCSEC


def test_airmass_is_sec_z(grid_case: tuple[Time, EarthLocation, VisibilityGrid], targets: SkyCoord) -> None:
    times, sites, grid = grid_case
    altaz = _astropy_altaz(targets, times, sites[0])
    up = altaz.alt.deg > 5.0
    np.testing.assert_allclose(grid.airmass[:, 0, :][up], altaz.secz.value[up], rtol=1e-4)
    below = grid.altitude_deg[:, 0, :] < 0.0
    assert below.any()
    assert np.all(np.isinf(grid.airmass[:, 0, :][below]))


def test_sun_altitude_matches_astropy(grid_case: tuple[Time, EarthLocation, VisibilityGrid]) -> None:
    times, sites, grid = grid_case
    sun = get_body("sun", times)
    for s in range(len(sites)):
        ref = sun.transform_to(AltAz(obstime=times, location=sites[s], pressure=0.0 * u.hPa)).alt.deg
        assert np.abs(grid.sun_altitude_deg[s] - ref).max() < 2.0 * ARCSEC


def test_topocentric_moon_matches_astropy(
    grid_case: tuple[Time, EarthLocation, VisibilityGrid], targets: SkyCoord
) -> None:
    times, sites, grid = grid_case
    for s in range(len(sites)):
        moon = get_body("moon", times, location=sites[s])
        frame = AltAz(obstime=times, location=sites[s], pressure=0.0 * u.hPa)
        assert np.abs(grid.moon_altitude_deg[s] - moon.transform_to(frame).alt.deg).max() < 3.0 * ARCSEC
        # astroplan's MoonSeparationConstraint: moon.separation(targets), in the Moon's GCRS.
        separation = moon[None, :].separation(targets[:, None]).deg
        assert np.abs(grid.moon_separation_deg[:, s, :] - separation).max() < 3.0 * ARCSEC


def test_moon_illumination_matches_astroplan(grid_case: tuple[Time, EarthLocation, VisibilityGrid]) -> None:
    times, _, grid = grid_case
    np.testing.assert_allclose(grid.moon_illumination, moon_illumination(times), atol=1e-5)
    assert np.all((grid.moon_illumination >= 0.0) & (grid.moon_illumination <= 1.0))


# --------------------------------------------------------------------------
# Constraints and windows against astropy


def _astropy_state(
    *, targets: SkyCoord, sites: EarthLocation, times: Time, constraints: Constraints
) -> tuple[np.ndarray, np.ndarray]:
    """Observability by astropy for matched (or broadcast) targets, sites and times.

    Returns (observable, distance of the nearest limit in degrees), the latter
    to recognise samples whose state is decided by arcseconds.
    """
    alt = targets.transform_to(AltAz(obstime=times, location=sites, pressure=0.0 * u.hPa)).alt.deg
    sun_alt = get_body("sun", times).transform_to(AltAz(obstime=times, location=sites)).alt.deg
    separation = get_body("moon", times, location=sites).separation(targets).deg
    alt_floor = np.degrees(np.arcsin(constraints.min_sin_altitude))
    ok = (alt >= alt_floor) & (sun_alt <= constraints.sun_max_alt_deg)
    margin = np.minimum(np.abs(alt - alt_floor), np.abs(sun_alt - constraints.sun_max_alt_deg))
    if constraints.min_moon_separation_deg > 0.0:
        ok &= separation >= constraints.min_moon_separation_deg
        margin = np.minimum(margin, np.abs(separation - constraints.min_moon_separation_deg))
    return ok, margin


WINDOW_CASES = {
    # Near full Moon, so the Moon-separation limit makes edges too.
    "full_moon_2026": (
        "2026-09-25T00:00:00",
        Constraints(max_airmass=2.0, min_moon_separation_deg=45.0, sun_max_alt_deg=-12.0),
    ),
    "astronomical_2027": (
        "2027-03-10T00:00:00",
        Constraints(max_airmass=2.5, min_moon_separation_deg=20.0, sun_max_alt_deg=-18.0, min_alt_deg=35.0),
    ),
}


@pytest.fixture(scope="module", params=sorted(WINDOW_CASES))
def window_case(
    request: pytest.FixtureRequest,
) -> tuple[SkyCoord, EarthLocation, Time, Constraints, VisibilityWindows]:
    start_iso, constraints = WINDOW_CASES[request.param]
    targets = _random_targets(40, seed=99)
    sites = _sites(["lsc", "coj", "cpt", "ogg"])
    start = Time(start_iso, scale="utc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        windows = observable_windows(
            targets=targets, sites=sites, start=start, end=start + 1 * u.day, constraints=constraints
        )
    return targets, sites, start, constraints, windows


def test_observable_samples_match_astropy(
    window_case: tuple[SkyCoord, EarthLocation, Time, Constraints, VisibilityWindows],
) -> None:
    targets, sites, start, constraints, _ = window_case
    times = start + np.arange(0, 145) * 10 * u.min
    ok = compute_grid(targets=targets, sites=sites, times=times).observable(constraints=constraints)
    assert 0.02 < ok.mean() < 0.5
    for s in range(len(sites)):
        ref, margin = _astropy_state(
            targets=targets[:, None], sites=sites[s], times=times[None, :], constraints=constraints
        )
        disagree = ok[:, s, :] != ref
        # Only samples within an arcsecond or so of a limit may differ.
        assert np.all(margin[disagree] < 2.0 * ARCSEC)


def test_window_edges_match_astropy_bisection(
    window_case: tuple[SkyCoord, EarthLocation, Time, Constraints, VisibilityWindows],
) -> None:
    targets, sites, start, constraints, windows = window_case
    end = start + 1 * u.day
    long_enough = windows.duration > 10 * u.min
    # (edge time, target, site, rising) for every edge not clipped to the range
    edges = []
    for times, rising in ((windows.start, True), (windows.end, False)):
        inside = long_enough & ((times - start) > 1 * u.s) & ((end - times) > 1 * u.s)
        edges.append(
            (
                times[inside],
                windows.target_index[inside],
                windows.site_index[inside],
                np.full(inside.sum(), rising),
            )
        )
    edge_time = Time(np.concatenate([e[0].jd for e in edges]), format="jd", scale="utc")
    tgt = np.concatenate([e[1] for e in edges])
    site = np.concatenate([e[2] for e in edges])
    rising = np.concatenate([e[3] for e in edges])
    assert len(tgt) >= 40
    edge_targets, edge_sites = targets[tgt], sites[site]

    def state(at: Time) -> np.ndarray:
        return _astropy_state(targets=edge_targets, sites=edge_sites, times=at, constraints=constraints)[0]

    half = 4.0 * u.min
    lo, hi = edge_time - half, edge_time + half
    # astropy must see the same change of state within the bracket.
    assert np.all(state(lo) != rising)
    assert np.all(state(hi) == rising)
    for _ in range(13):  # 8 minutes / 2**13 = 0.06 s
        mid = lo + (hi - lo) / 2
        before = state(mid) != rising
        lo = Time(np.where(before, mid.jd, lo.jd), format="jd", scale="utc")
        hi = Time(np.where(before, hi.jd, mid.jd), format="jd", scale="utc")
    reference = lo + (hi - lo) / 2
    error_s = np.abs((edge_time - reference).to_value(u.s))
    assert error_s.max() < 60.0  # the contract
    assert np.median(error_s) < 2.0  # typical edges are much better


def test_windows_contain_exactly_the_observable_samples(
    window_case: tuple[SkyCoord, EarthLocation, Time, Constraints, VisibilityWindows],
) -> None:
    targets, sites, start, constraints, windows = window_case
    times = start + np.arange(0, 289) * 5 * u.min  # the grid observable_windows samples
    ok = compute_grid(targets=targets, sites=sites, times=times).observable(constraints=constraints)
    inside = np.zeros_like(ok)
    offsets = (times - start).to_value(u.day)
    starts = (windows.start - start).to_value(u.day)
    ends = (windows.end - start).to_value(u.day)
    for k in range(len(windows)):
        inside[windows.target_index[k], windows.site_index[k]] |= (offsets >= starts[k] - 1e-9) & (
            offsets <= ends[k] + 1e-9
        )
    assert np.array_equal(inside, ok)
    assert np.all(windows.duration > 0 * u.s)
    order = np.lexsort((starts, windows.site_index, windows.target_index))
    assert np.array_equal(order, np.arange(len(windows)))


def test_for_pair_returns_that_pairs_windows(
    window_case: tuple[SkyCoord, EarthLocation, Time, Constraints, VisibilityWindows],
) -> None:
    *_, windows = window_case
    k = len(windows) // 2
    target, site = int(windows.target_index[k]), int(windows.site_index[k])
    pair = windows.for_pair(target=target, site=site)
    mask = (windows.target_index == target) & (windows.site_index == site)
    assert len(pair) == mask.sum() >= 1
    for (begin, finish), begin_ref, finish_ref in zip(
        pair, windows.start[mask], windows.end[mask], strict=True
    ):
        assert begin == begin_ref
        assert finish == finish_ref
        assert begin.scale == "utc"
    with pytest.raises(ValueError, match="out of range"):
        windows.for_pair(target=windows.n_targets, site=0)


# --------------------------------------------------------------------------
# Inputs and constraints


def test_scalar_inputs_give_singleton_axes() -> None:
    grid = compute_grid(
        targets=SkyCoord(ra=10.0 * u.deg, dec=-20.0 * u.deg),
        sites=_sites(["lsc"])[0],
        times=Time("2026-05-01T04:00:00"),
    )
    assert grid.shape == (1, 1, 1)


def test_constraints_defaults_and_thresholds() -> None:
    default = Constraints()
    assert default.max_airmass == 2.0
    assert default.min_sin_altitude == pytest.approx(0.5)
    tighter = Constraints(max_airmass=3.0, min_alt_deg=40.0)
    assert tighter.min_sin_altitude == pytest.approx(np.sin(np.radians(40.0)))
    unlimited = Constraints(max_airmass=None, min_moon_separation_deg=0.0)
    assert unlimited.min_sin_altitude == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_airmass": 0.9},
        {"min_moon_separation_deg": -1.0},
        {"min_moon_separation_deg": 181.0},
        {"sun_max_alt_deg": 91.0},
        {"min_alt_deg": 90.0},
        {"min_alt_deg": -5.0},
        {"max_airmass": float("nan")},
    ],
)
def test_constraints_reject_out_of_range(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Constraints(**kwargs)


def test_compute_grid_rejects_bad_inputs() -> None:
    target = SkyCoord(ra=[10.0] * u.deg, dec=[-20.0] * u.deg)
    site = _sites(["lsc"])
    times = Time(["2026-05-01T04:00:00", "2026-05-01T05:00:00"])
    with pytest.raises(ValueError, match="targets is empty"):
        compute_grid(targets=SkyCoord(ra=[] * u.deg, dec=[] * u.deg), sites=site, times=times)
    with pytest.raises(ValueError, match="sites is empty"):
        compute_grid(targets=target, sites=EarthLocation.from_geodetic([] * u.deg, [] * u.deg), times=times)
    with pytest.raises(ValueError, match="times is empty"):
        compute_grid(targets=target, sites=site, times=Time([], format="mjd"))
    with pytest.raises(ValueError, match="strictly increasing"):
        compute_grid(targets=target, sites=site, times=times[::-1])
    with pytest.raises(ValueError, match="strictly increasing"):
        compute_grid(targets=target, sites=site, times=Time(["2026-05-01", "2026-05-01"]))
    with pytest.raises(TypeError):
        compute_grid(targets=[(10.0, -20.0)], sites=site, times=times)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("step", "end_offset", "message"),
    [
        (-5 * u.min, 1 * u.day, "step"),
        (0 * u.min, 1 * u.day, "step"),
        (2 * u.hour, 1 * u.day, "step"),
        (5 * u.m, 1 * u.day, "step"),
        (5 * u.min, 0 * u.day, "after start"),
        (5 * u.min, -1 * u.day, "after start"),
    ],
)
def test_observable_windows_rejects_bad_ranges(
    step: u.Quantity, end_offset: u.Quantity, message: str
) -> None:
    start = Time("2026-05-01T00:00:00")
    with pytest.raises(ValueError, match=message):
        observable_windows(
            targets=_random_targets(2, seed=1),
            sites=_sites(["lsc"]),
            start=start,
            end=start + end_offset,
            constraints=Constraints(),
            step=step,
        )


def test_observable_windows_rejects_array_start() -> None:
    start = Time(["2026-05-01T00:00:00", "2026-05-02T00:00:00"])
    with pytest.raises(ValueError, match="scalar"):
        observable_windows(
            targets=_random_targets(2, seed=1),
            sites=_sites(["lsc"]),
            start=start,
            end=start[1] + 1 * u.day,
            constraints=Constraints(),
        )


def test_no_observable_time_gives_no_windows() -> None:
    start = Time("2026-06-21T00:00:00")
    windows = observable_windows(
        targets=_random_targets(5, seed=3),
        sites=_sites(["lsc", "tfn"]),
        start=start,
        end=start + 6 * u.hour,
        constraints=Constraints(sun_max_alt_deg=-90.0),  # the Sun never gets that low
    )
    assert len(windows) == 0
    assert windows.for_pair(target=0, site=1) == []
