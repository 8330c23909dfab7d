"""Planner speed: Baton's network planner vs astroplan's PriorityScheduler, in one run.

Baton plans one night of N open requests (default 1,000) over the whole
default network (11 sites, 25 facilities) in one call of the production
planner (observatories/scheduling/planner.py). astroplan's PriorityScheduler
schedules M blocks (default 200: at 1,000 it takes about a minute) for ONE
site (Cerro Tololo) and one night, with the same kind of constraints
(airmass, astronomical night, Moon separation). The ratio printed is per
request/block, honestly scaled when N != M:

    .venv/bin/python bench/bench_planner.py [--requests 1000] [--astroplan-blocks 200]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import astropy.units as u  # noqa: E402
from astropy.coordinates import EarthLocation, SkyCoord  # noqa: E402
from astropy.time import Time  # noqa: E402

from observatories.astro_offline import configure_offline_astropy  # noqa: E402
from observatories.scheduling.planner import FacilitySpec, RequestSpec, SiteSpec, plan_network  # noqa: E402

configure_offline_astropy()
NIGHT_START = datetime(2027, 6, 1, 18, tzinfo=UTC)


def network() -> tuple[list[SiteSpec], list[FacilitySpec]]:
    data = json.loads((ROOT / "observatories/data/default_network.json").read_text())
    sites = [SiteSpec(code=s["code"], latitude_deg=s["latitude_deg"], longitude_deg=s["longitude_deg"],
                      elevation_m=s["elevation_m"], clear_fraction=s["clear_fraction"],
                      clear_spell_nights=s["clear_spell_nights"], cloudy_spell_nights=s["cloudy_spell_nights"])
             for s in data]
    facilities = [FacilitySpec(code=f["code"], site_code=s["code"], telescope_class=f["telescope_class"])
                  for s in data for f in s["facilities"]]
    return sites, facilities


def targets(n: int, seed: int = 3) -> list[tuple[float, float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(180, 330), rng.uniform(-70, 10), rng.uniform(1, 10)) for _ in range(n)]


def run_baton(n: int) -> tuple[float, int]:
    sites, facilities = network()
    requests = [
        RequestSpec(id=i, ra_deg=ra, dec_deg=dec, telescope_class="1m0", duration_s=600, window_start=NIGHT_START,
                    window_end=NIGHT_START + timedelta(hours=24), priority=prio, target_key=str(i))
        for i, (ra, dec, prio) in enumerate(targets(n))
    ]
    plan_network(requests=requests[:10], sites=sites, facilities=facilities, now=NIGHT_START)  # warm caches
    t0 = time.perf_counter()
    plans = plan_network(requests=requests, sites=sites, facilities=facilities, now=NIGHT_START,
                         horizon=timedelta(hours=24))
    elapsed = time.perf_counter() - t0
    return elapsed, sum(1 for p in plans.values() if p.chosen)


def run_astroplan(m: int) -> tuple[float, int]:
    from astroplan import (
        AirmassConstraint,
        AtNightConstraint,
        FixedTarget,
        MoonSeparationConstraint,
        Observer,
        ObservingBlock,
        PriorityScheduler,
        Schedule,
        Transitioner,
    )

    ctio = Observer(location=EarthLocation.from_geodetic(-70.805 * u.deg, -30.167 * u.deg, 2198 * u.m), name="lsc")
    constraints = [AirmassConstraint(max=2.0), AtNightConstraint.twilight_astronomical(),
                   MoonSeparationConstraint(min=30 * u.deg)]
    blocks = [
        ObservingBlock(FixedTarget(SkyCoord(ra * u.deg, dec * u.deg), name=str(i)), 600 * u.s, prio,
                       constraints=constraints)
        for i, (ra, dec, prio) in enumerate(targets(m))
    ]
    scheduler = PriorityScheduler(constraints=constraints, observer=ctio,
                                  transitioner=Transitioner(slew_rate=0.8 * u.deg / u.s), time_resolution=5 * u.min)
    schedule = Schedule(Time(NIGHT_START), Time(NIGHT_START + timedelta(hours=16)))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler(blocks, schedule)
    elapsed = time.perf_counter() - t0
    return elapsed, len(schedule.observing_blocks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--astroplan-blocks", type=int, default=200)
    args = parser.parse_args()
    baton_s, planned = run_baton(args.requests)
    print(f"Baton network planner: {args.requests} requests x 11 sites / 25 facilities, one night: "
          f"{baton_s:.2f} s ({planned} requests got copies)")
    print(f"astroplan PriorityScheduler: {args.astroplan_blocks} blocks, one site (CTIO), one night ... ", end="", flush=True)
    astro_s, scheduled = run_astroplan(args.astroplan_blocks)
    print(f"{astro_s:.2f} s ({scheduled} blocks scheduled)")
    per_baton = baton_s / args.requests
    per_astro = astro_s / args.astroplan_blocks
    print(f"per request/block: Baton {per_baton * 1e3:.2f} ms (whole network) vs astroplan {per_astro * 1e3:.1f} ms "
          f"(one site): {per_astro / per_baton:.0f}x faster per item; whole problem: Baton {args.requests} requests "
          f"on 25 facilities in {baton_s:.2f} s vs astroplan {args.astroplan_blocks} blocks on 1 site in {astro_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
