"""Benchmark Baton's visibility engine against astropy AltAz and astroplan is_observable.

Run standalone, offline, without Django:

    .venv/bin/python bench/bench_visibility.py            # 1,000 targets x 10 sites x 24 h at 5 min
    .venv/bin/python bench/bench_visibility.py --targets 200 --hours 12

An "evaluation" is one (target, site, time) sample. The four constraints are
the same for all three: airmass <= 2, Sun below -18 deg (astronomical
twilight), Moon at least 30 deg away, altitude >= 35 deg. astropy's figure is
for the altitude transform alone (what a hand-written astropy planner would
start from), so the Baton/astropy ratio understates the gap.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from observatories.astro_offline import configure_offline_astropy  # noqa: E402

configure_offline_astropy()

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402
from astroplan import (  # noqa: E402
    AirmassConstraint,
    AltitudeConstraint,
    AtNightConstraint,
    MoonSeparationConstraint,
    Observer,
    is_observable,
)
from astropy.coordinates import AltAz, EarthLocation, SkyCoord  # noqa: E402
from astropy.time import Time  # noqa: E402
from tqdm import tqdm  # noqa: E402

from observatories.visibility import Constraints, compute_grid, observable_windows  # noqa: E402

NETWORK = REPO / "observatories" / "data" / "default_network.json"
START = "2026-07-01T00:00:00"
CONSTRAINTS = Constraints(
    max_airmass=2.0, sun_max_alt_deg=-18.0, min_moon_separation_deg=30.0, min_alt_deg=35.0
)


def _sites(count: int) -> tuple[list[str], EarthLocation]:
    with NETWORK.open(encoding="utf-8") as fh:
        rows = json.load(fh)[:count]
    location = EarthLocation.from_geodetic(
        lon=[row["longitude_deg"] for row in rows] * u.deg,
        lat=[row["latitude_deg"] for row in rows] * u.deg,
        height=[row["elevation_m"] for row in rows] * u.m,
    )
    return [row["code"] for row in rows], location


def _targets(count: int) -> SkyCoord:
    rng = np.random.default_rng(2026)
    ra = rng.uniform(0.0, 360.0, count)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, count)))
    return SkyCoord(ra=ra * u.deg, dec=dec * u.deg)


def _times(hours: float) -> Time:
    """A fresh Time grid at 5-minute steps (fresh, so no cached UT1/TT is reused)."""
    return Time(START, scale="utc") + np.arange(0.0, hours * 60.0 + 1e-9, 5.0) * u.min


def _timed(run: Callable[[], object], repeats: int, label: str, warmup: int = 2) -> tuple[float, float]:
    """(median, best) wall-clock seconds of ``run`` over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):  # IERS table load, first-touch memory
        run()
    seconds = []
    for _ in tqdm(range(repeats), desc=label, leave=False):
        began = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), min(seconds)


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _report(label: str, seconds: float, evaluations: int, extra: str = "") -> float:
    rate = evaluations / seconds
    print(f"{label:<52s} {seconds * 1e3:9.1f} ms {rate / 1e6:9.2f} M eval/s  {extra}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--hours", type=float, default=24.0, help="span covering one night at every site")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--astroplan-targets", type=int, default=1000, help="targets given to astroplan (a subset if fewer)"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # polar-motion and separation notices from astropy

    targets = _targets(args.targets)
    site_codes, sites = _sites(args.sites)
    n_times = len(_times(args.hours))
    evaluations = args.targets * len(site_codes) * n_times
    print(
        f"grid: {args.targets} targets x {len(site_codes)} sites ({', '.join(site_codes)}) x {n_times} times "
        f"({args.hours:g} h at 5 min from {START} UTC) = {evaluations:,} evaluations"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}; load average at start {_load()}"
    )
    print("times are medians over repeated runs (best run in brackets)")

    # Baton: full constraint evaluation from astropy objects to a bool grid.
    def baton_grid() -> np.ndarray:
        grid = compute_grid(targets=targets, sites=sites, times=_times(args.hours))
        return grid.observable(constraints=CONSTRAINTS)

    median, best = _timed(baton_grid, args.repeats, "baton grid")
    baton_rate = _report(
        "baton compute_grid + observable (4 constraints)",
        median,
        evaluations,
        f"(best {best * 1e3:.1f} ms = {evaluations / best / 1e6:.0f} M eval/s)",
    )
    observable = baton_grid()

    times = _times(args.hours)

    def baton_windows() -> int:
        found = observable_windows(
            targets=targets,
            sites=sites,
            start=times[0],
            end=times[-1],
            constraints=CONSTRAINTS,
            step=5 * u.min,
        )
        return len(found)

    median, best = _timed(baton_windows, args.repeats, "baton windows")
    _report(
        "baton observable_windows (grid + edges to 0.05 s)",
        median,
        evaluations,
        f"(best {best * 1e3:.1f} ms; {baton_windows():,} windows)",
    )

    # astropy: the AltAz transform alone, vectorised over the same grid.
    def astropy_altaz() -> np.ndarray:
        fresh = _times(args.hours)
        frame = AltAz(obstime=fresh[None, None, :], location=sites[None, :, None], pressure=0.0 * u.hPa)
        return targets[:, None, None].transform_to(frame).alt.deg

    median, best = _timed(astropy_altaz, 3, "astropy AltAz", warmup=0)
    astropy_rate = _report(
        "astropy AltAz (altitude only, vectorised)", median, evaluations, f"(best {best * 1e3:.0f} ms)"
    )

    # astroplan: is_observable with four constraints, one fresh Observer per
    # site (so its alt/az cache starts cold), on all targets or a subset.
    subset = targets[: args.astroplan_targets]
    constraints = [
        AirmassConstraint(max=2.0),
        AtNightConstraint.twilight_astronomical(),
        MoonSeparationConstraint(min=30.0 * u.deg),
        AltitudeConstraint(min=35.0 * u.deg),
    ]
    agree = 0
    began = time.perf_counter()
    for s in tqdm(range(len(site_codes)), desc="astroplan is_observable", leave=False):
        observer = Observer(location=sites[s])
        any_time = is_observable(constraints, observer, subset, times=_times(args.hours))
        agree += int(np.sum(any_time == observable[: len(subset), s, :].any(axis=-1)))
    astroplan_evaluations = len(subset) * len(site_codes) * n_times
    astroplan_rate = _report(
        "astroplan is_observable (4 constraints)",
        time.perf_counter() - began,
        astroplan_evaluations,
        f"(one run, {len(subset)} targets = {astroplan_evaluations:,} evaluations)",
    )
    pairs = len(subset) * len(site_codes)
    print(f"baton and astroplan agree on 'observable at some time' for {agree}/{pairs} (target, site) pairs")
    print(f"ratio baton/astropy:   {baton_rate / astropy_rate:6.0f}x")
    print(f"ratio baton/astroplan: {baton_rate / astroplan_rate:6.0f}x")
    print(f"load average at end {_load()}")


if __name__ == "__main__":
    main()
