"""Season simulation: one facility per request vs resubmit-after-failure vs Baton's redundant planner.

A 90-night season on the default network (observatories/data/default_network.json):
a few hundred follow-up requests with windows from hours to days arrive over
the season; each site's weather follows its two-state Markov prior (clear
fraction and spell lengths from the network file), a seeded RNG draws it once
per site-night, and facilities also suffer random downtime nights. All three
strategies see the same weather, requests and visibility and use the same
planner code as production (observatories/scheduling/planner.py):

  (a) one facility: the single best chance of the request, nothing else;
  (b) resubmit: the best chance; when it fails, the best remaining chance
      after the failure is known (TOM's retry strategy), until the window ends;
  (c) Baton: copies at independent sites until p(success) >= 0.95, spare
      copies cancelled when one succeeds, re-planned when one fails and when
      news arrives that a live copy's night has begun (cloudy, or its
      telescope down), as production's five-minute re-planning would see it.

What the planner knows, as production's live status feeds tell it: once a
site's night has begun (local dusk), whether it is clear and which of its
telescopes are down, for that whole night (the weather here is drawn per
night); before that, the previous night's state.

A chance that is executed on a clear, working night succeeds and costs its
telescope time; a clouded-out or broken one costs nothing; a copy cancelled
before it starts costs nothing; copies running at the same time both spend.
Copies already at facilities run even if a failure becomes known only after
the window has closed.

Prints, per strategy: the fraction of requests completed in their window and
the telescope hours spent per completed request, then (c)'s ratios to (a); and
the oracle ceiling: the fraction of requests that had at least one chance in
their window (any facility of the class, any site) that turned out clear and
working, which no strategy can beat. ``--explain HOURS`` traces every request
(c) failed with that window length (0: all) and names the cause.

    .venv/bin/python bench/bench_season.py [--requests 300] [--nights 90] [--seed 7] [--explain 48]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from observatories.scheduling.planner import (  # noqa: E402
    CANCEL_LATENCY_S,
    Chance,
    FacilitySpec,
    LiveCopy,
    RequestSpec,
    SiteSpec,
    plan_network,
)

SEASON_START = datetime(2027, 3, 1, 12, tzinfo=UTC)
# A site's night begins (its weather becomes known) this fraction of a day after local noon: 18:30.
DUSK_AFTER_NOON = 6.5 / 24.0


def load_network() -> tuple[list[SiteSpec], list[FacilitySpec]]:
    data = json.loads((ROOT / "observatories" / "data" / "default_network.json").read_text())
    sites = [
        SiteSpec(
            code=s["code"], latitude_deg=s["latitude_deg"], longitude_deg=s["longitude_deg"],
            elevation_m=s["elevation_m"], clear_fraction=s["clear_fraction"],
            clear_spell_nights=s["clear_spell_nights"], cloudy_spell_nights=s["cloudy_spell_nights"],
        )
        for s in data
    ]
    facilities = [
        FacilitySpec(code=f["code"], site_code=s["code"], telescope_class=f["telescope_class"], p_operational=0.95)
        for s in data
        for f in s["facilities"]
    ]
    return sites, facilities


class Weather:
    """Per site-night clear/cloudy states from each site's Markov prior, and facility downtime nights."""

    def __init__(self, *, sites: list[SiteSpec], facilities: list[FacilitySpec], nights: int, seed: int) -> None:
        rng = random.Random(seed)
        self.clear: dict[tuple[str, int], bool] = {}
        for s in sites:
            a, b = 1.0 / s.clear_spell_nights, 1.0 / s.cloudy_spell_nights
            state = rng.random() < s.clear_fraction
            for n in range(-2, nights + 5):
                self.clear[(s.code, n)] = state
                state = (rng.random() >= a) if state else (rng.random() < b)
        self.up: dict[tuple[str, int], bool] = {
            (f.code, n): rng.random() < 0.97 for f in facilities for n in range(-2, nights + 5)
        }
        self.site_of = {f.code: f.site_code for f in facilities}
        self.longitude = {s.code: s.longitude_deg for s in sites}

    def night(self, site: str, at: datetime) -> int:
        local = (at - SEASON_START).total_seconds() / 86400.0 + self.longitude[site] / 360.0
        return int(local // 1)

    def dusk(self, site: str, night: int) -> datetime:
        """When ``night`` begins at ``site`` (its weather and telescopes' state become known)."""
        return SEASON_START + timedelta(days=night + DUSK_AFTER_NOON - self.longitude[site] / 360.0)

    def latest_night(self, site: str, at: datetime) -> int:
        """The site's last night that has begun by ``at``."""
        n = self.night(site, at)
        return n if at >= self.dusk(site, n) else n - 1

    def succeeds(self, chance: Chance) -> bool:
        n = self.night(chance.site_code, chance.start)
        return self.clear[(chance.site_code, n)] and self.up[(chance.facility_code, n)]

    def known(self, site: SiteSpec, at: datetime) -> SiteSpec:
        """The site with its live state: the weather of its last night that has begun, as of that night.

        Production reads each site's state from its facilities' live status (reported within
        minutes), so once a site's night has begun the planner knows whether it is clear. A
        night here begins at local dusk (18:30 local mean time, a little before any chance can
        start); before that, the last known state is the previous night's, observed around its
        local midnight, so a chance tonight is one Markov step (one night) later.
        """
        n = self.latest_night(site.code, at)
        observed = at if n == self.night(site.code, at) else self.dusk(site.code, n) + timedelta(hours=5.5)
        return replace(site, weather_now="clear" if self.clear[(site.code, n)] else "cloudy",
                       weather_at=min(observed, at))

    def known_facility(self, facility: FacilitySpec, at: datetime) -> FacilitySpec:
        """The facility with its live state: down for the rest of tonight if its night has begun and it is down.

        As production's status feed reports (a facility in downtime gets ``down_until``).
        """
        n = self.latest_night(facility.site_code, at)
        if self.up[(facility.code, n)]:
            return facility
        return replace(facility, down_until=self.dusk(facility.site_code, n + 1) - timedelta(hours=DUSK_AFTER_NOON * 24))


def feasible(request: RequestSpec, *, sites: list[SiteSpec], facilities: list[FacilitySpec]) -> bool:
    """Whether the request has at least one chance at all (a team asks only for what can be seen)."""
    plan = plan_network(requests=[request], sites=sites, facilities=facilities, now=request.window_start,
                        horizon=request.window_end - request.window_start + timedelta(hours=1))
    return plan[request.id].chances_seen > 0


def make_requests(*, count: int, nights: int, seed: int, sites: list[SiteSpec],
                  facilities: list[FacilitySpec]) -> list[RequestSpec]:
    """Requests on targets observable somewhere in their window (others are redrawn)."""
    rng = random.Random(seed + 1)
    requests: list[RequestSpec] = []
    i = 0
    while len(requests) < count:
        i += 1
        if rng.random() < 0.5:  # Galactic bulge microlensing and transients
            ra, dec = rng.gauss(268.0, 4.0), rng.gauss(-29.0, 3.0)
        else:  # anywhere an astronomer might point, south-heavy like the network
            ra, dec = rng.uniform(0, 360), rng.uniform(-75, 45)
        start = SEASON_START + timedelta(hours=rng.uniform(0, 24 * (nights - 4)))
        hours = rng.choice([8, 12, 24, 24, 48, 72, 96])
        request = RequestSpec(
            id=len(requests), ra_deg=ra % 360, dec_deg=max(-89.0, min(89.0, dec)), telescope_class="1m0",
            duration_s=rng.choice([300, 600, 900, 1200]), window_start=start,
            window_end=start + timedelta(hours=hours), success_probability=0.95,
            priority=rng.uniform(1, 10), target_key=f"t{i}",
        )
        if feasible(request, sites=sites, facilities=facilities):
            requests.append(request)
    return requests


def plan_one(request: RequestSpec, *, sites, facilities, weather: Weather, now: datetime, target_p: float,
             live: tuple[LiveCopy, ...] = (), excluded: frozenset[str] = frozenset(),
             failed: tuple[tuple[str, datetime], ...] = ()) -> list[Chance]:
    spec = replace(request, window_start=max(request.window_start, now), success_probability=target_p,
                   live=live, excluded_sites=excluded, failed=failed)
    if spec.window_end <= now:
        return []
    known_sites = [weather.known(s, now) for s in sites]
    known_facilities = [weather.known_facility(f, now) for f in facilities]
    plan = plan_network(requests=[spec], sites=known_sites, facilities=known_facilities, now=now,
                        horizon=request.window_end - now + timedelta(hours=1))
    return plan[request.id].chosen


def run_single(request, *, sites, facilities, weather) -> tuple[bool, float]:
    """(a) the best single chance: its success decides."""
    chosen = plan_one(request, sites=sites, facilities=facilities, weather=weather,
                      now=request.window_start, target_p=1e-9)
    if not chosen:
        return False, 0.0
    chance = max(chosen, key=lambda c: c.p) if len(chosen) > 1 else chosen[0]
    ok = weather.succeeds(chance)
    return ok, chance.duration_s if ok else 0.0


def run_resubmit(request, *, sites, facilities, weather) -> tuple[bool, float]:
    """(b) one chance at a time; after a failure, the next best chance once the failure is known."""
    now = request.window_start
    while now < request.window_end:
        chosen = plan_one(request, sites=sites, facilities=facilities, weather=weather, now=now,
                          target_p=1e-9, excluded=frozenset())
        if not chosen:
            return False, 0.0
        chance = chosen[0]
        if weather.succeeds(chance):
            return True, chance.duration_s
        now = chance.end + timedelta(seconds=CANCEL_LATENCY_S)
    return False, 0.0


def run_baton(request, *, sites, facilities, weather, trace: list | None = None) -> tuple[bool, float]:
    """(c) redundant copies to p >= 0.95; twins cancelled on success; re-plan on failure.

    ``trace``, when given, receives the story: ("plan", at, new copies, live copies),
    ("ran", copy, succeeded), ("end", at, why).
    """
    now = request.window_start
    live: list[Chance] = []
    failed: list[tuple[str, datetime]] = []
    heard: set[tuple[str, int]] = set()
    spent = 0.0
    for _ in range(100):
        if now < request.window_end:
            new = plan_one(request, sites=sites, facilities=facilities, weather=weather, now=now,
                           target_p=request.success_probability, failed=tuple(failed),
                           live=tuple(LiveCopy(facility_code=c.facility_code, site_code=c.site_code, start=c.start,
                                               end=c.end, p=c.p, duration_s=c.duration_s) for c in live))
            if trace is not None:
                trace.append(("plan", now, new, list(live)))
            live.extend(new)
        if not live:
            if trace is not None:
                trace.append(("end", now, "nothing left" if now < request.window_end else "window over"))
            return False, spent
        live.sort(key=lambda c: c.start)
        # Production re-plans every few minutes: the news that can change a plan is the next
        # copy's site-night beginning (cloudy, or its telescope down), so re-plan then.
        news_night = (live[0].site_code, weather.night(live[0].site_code, live[0].start))
        news_at = weather.dusk(*news_night)
        if now < news_at < live[0].end and news_at < request.window_end and news_night not in heard:
            heard.add(news_night)
            now = news_at
            continue
        first = live.pop(0)
        ok = weather.succeeds(first)
        if trace is not None:
            trace.append(("ran", first, ok))
        if ok:
            spent += first.duration_s
            done_at = first.start + timedelta(seconds=first.duration_s + CANCEL_LATENCY_S)
            # Twins that started before the success was known also ran (and spent, if clear).
            for twin in live:
                if twin.start < done_at and weather.succeeds(twin):
                    spent += twin.duration_s
            return True, spent
        # Failed (weather or downtime): re-plan from the moment the failure is known, as
        # production does (its site-night is spent; the site's live state says cloudy). Copies
        # already at facilities run at their own times, even if the failure is known only after
        # the window has ended (then nothing new is planned).
        failed.append((first.site_code, first.start))
        now = max(now, first.end + timedelta(seconds=CANCEL_LATENCY_S))
    return False, spent


def oracle(request: RequestSpec, *, sites, facilities, weather: Weather) -> list[Chance]:
    """Every chance in the window (any facility of the class, any site) that turned out clear and working.

    The physical ceiling: a request with none cannot be completed by any strategy.
    """
    plan = plan_network(requests=[request], sites=sites, facilities=facilities, now=request.window_start,
                        horizon=request.window_end - request.window_start + timedelta(hours=1))
    return [c for c in plan[request.id].chances if weather.succeeds(c)]


def explain_failure(request: RequestSpec, *, sites, facilities, weather: Weather, out=print) -> str:
    """Re-run (c) on one request with a trace, print it, and return the cause of its failure.

    Causes: "no clear chance" (the oracle has none: physics), "clear chance passed over"
    (a clear chance was on offer at some re-plan and the planner chose others or stopped
    at the target), "clear chance not yet offered" (it was beyond every plan's reach).
    """
    trace: list = []
    ok, _ = run_baton(request, sites=sites, facilities=facilities, weather=weather, trace=trace)
    if ok:
        return "completed"
    good = oracle(request, sites=sites, facilities=facilities, weather=weather)
    base = request.window_start

    def show(c: Chance) -> str:
        return (f"{c.facility_code:<10} +{(c.start - base).total_seconds() / 3600:5.1f}h.."
                f"+{(c.end - base).total_seconds() / 3600:5.1f}h p={c.p:.2f} "
                f"{'clear' if weather.succeeds(c) else 'fails'}")

    hours = (request.window_end - request.window_start).total_seconds() / 3600
    out(f"request {request.id}: {hours:.0f} h window from {base:%m-%d %H:%M}, {request.duration_s:.0f} s, "
        f"dec {request.dec_deg:+.1f}; clear chances: {len(good)}")
    for c in good:
        out(f"    clear chance {show(c)}")
    offered = False
    for event in trace:
        if event[0] == "plan":
            _, at, new, live = event
            out(f"    plan at +{(at - base).total_seconds() / 3600:.1f}h ({len(live)} live): "
                + ("; ".join(show(c) for c in new) or "nothing new"))
            offered |= any(g.start >= at for g in good)
        elif event[0] == "ran":
            out(f"    ran {show(event[1])}")
        else:
            out(f"    end at +{(event[1] - base).total_seconds() / 3600:.1f}h: {event[2]}")
    if not good:
        return "no clear chance"
    return "clear chance passed over" if offered else "clear chance not yet offered"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--nights", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", type=int, default=None, metavar="HOURS",
                        help="trace every request (c) failed with this window length (0: every length)")
    args = parser.parse_args()
    sites, facilities = load_network()
    weather = Weather(sites=sites, facilities=facilities, nights=args.nights, seed=args.seed)
    requests = make_requests(count=args.requests, nights=args.nights, seed=args.seed, sites=sites,
                             facilities=facilities)
    strategies = {"(a) one facility": run_single, "(b) resubmit after failure": run_resubmit,
                  "(c) Baton redundant": run_baton}
    results: dict[str, tuple[int, float]] = {}
    windows: dict[str, dict[int, list[int]]] = {}
    outcomes: dict[str, dict[int, bool]] = {}

    def window_hours(request: RequestSpec) -> int:
        return round((request.window_end - request.window_start).total_seconds() / 3600)

    t0 = time.perf_counter()
    for name, run in strategies.items():
        done, spent = 0, 0.0
        by_window: dict[int, list[int]] = {}
        outcomes[name] = {}
        for request in tqdm(requests, desc=name, unit="req", leave=False):
            ok, seconds = run(request, sites=sites, facilities=facilities, weather=weather)
            outcomes[name][request.id] = ok
            done += ok
            spent += seconds
            by_window.setdefault(window_hours(request), [0, 0])
            by_window[window_hours(request)][0] += ok
            by_window[window_hours(request)][1] += 1
        results[name] = (done, spent)
        windows[name] = by_window
    elapsed = time.perf_counter() - t0
    # The ceiling: requests with at least one chance that turned out clear and working.
    ceiling: dict[int, list[int]] = {}
    for request in requests:
        possible = bool(oracle(request, sites=sites, facilities=facilities, weather=weather))
        ceiling.setdefault(window_hours(request), [0, 0])
        ceiling[window_hours(request)][0] += possible
        ceiling[window_hours(request)][1] += 1
    possible_total = sum(v[0] for v in ceiling.values())
    print(f"Season: {args.nights} nights, {len(requests)} requests observable in their window (8-96 h, 1m0), "
          f"{len(sites)} sites / {len(facilities)} facilities, seed {args.seed}; weather from site priors.")
    print(f"{'strategy':<30} {'completed':>10} {'fraction':>9} {'hours/completed':>16}")
    for name, (done, spent) in results.items():
        per = spent / 3600.0 / done if done else float("nan")
        print(f"{name:<30} {done:>10} {done / len(requests):>9.3f} {per:>16.3f}")
    print(f"{'oracle (a clear chance existed)':<30} {possible_total:>10} {possible_total / len(requests):>9.3f}")
    hours = sorted(ceiling)
    print(f"completed fraction by window length: {'':<1}" + "  ".join(f"{h:>4d} h" for h in hours))
    for name, by_window in [*windows.items(), ("oracle", ceiling)]:
        print(f"  {name:<30}" + "  ".join(f"{by_window[h][0] / by_window[h][1]:6.2f}" for h in hours))
    print(f"  {'(requests)':<30}" + "  ".join(f"{ceiling[h][1]:6d}" for h in hours))
    a_done, a_spent = results["(a) one facility"]
    c_done, c_spent = results["(c) Baton redundant"]
    b_done, _ = results["(b) resubmit after failure"]
    print(f"Baton vs (a): completion {c_done / len(requests):.3f} vs {a_done / len(requests):.3f} "
          f"({c_done / max(a_done, 1):.2f}x); telescope time per completed request "
          f"{(c_spent / c_done) / (a_spent / a_done):.2f}x of (a)  [goal: >= 0.95 at <= 1.5x]")
    print(f"Baton vs (b): completion {c_done / len(requests):.3f} vs {b_done / len(requests):.3f}")
    print(f"Baton vs the oracle ceiling: {c_done / len(requests):.3f} of {possible_total / len(requests):.3f} "
          f"({c_done / max(possible_total, 1):.3f} of the possible)")
    print(f"(simulation wall time {elapsed:.1f} s)")
    if args.explain is not None:
        causes: dict[str, int] = {}
        print(f"\n(c)'s failures{'' if not args.explain else f' with {args.explain} h windows'}:")
        for request in requests:
            if outcomes["(c) Baton redundant"][request.id]:
                continue
            if args.explain and window_hours(request) != args.explain:
                continue
            cause = explain_failure(request, sites=sites, facilities=facilities, weather=weather)
            print(f"    => {cause}")
            causes[cause] = causes.get(cause, 0) + 1
        print("causes: " + ", ".join(f"{k}: {v}" for k, v in sorted(causes.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
