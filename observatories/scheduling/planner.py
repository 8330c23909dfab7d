"""The redundant planner: which chances, at which facilities, make a follow-up goal survive.

Pure computation (numpy + the visibility engine, no Django), so that the
production planner, the tests and the season benchmark run the same code.

For every open request the planner finds each *chance* in its window: a
facility on a night when the target is observable under the request's
constraints for at least the time the observation takes. Each chance gets

    p(success) = p(visible) x p(clear) x p(operational)

where p(clear) comes from the site's two-state Markov weather model (its
clear fraction and spell lengths) conditioned on the site's live state, and
p(operational) from the facility's status and recent record. The planner
then picks, per request, the cheapest set of chances whose combined
probability 1 - prod(1 - p_i) reaches the request's target, one chance per
site (independent weather), counting the telescope time a chance is expected
to use: a copy that starts after an earlier copy has finished is cancelled
if that one succeeded, so a late backup costs little. Requests compete for
each facility-night's time in order of their effective priority, which
diminishes with the number of observations already going to the same target
(breadth over depth) and carries the team's fair-share factor. Copies
already dispatched count toward the target with the probability they were
dispatched with, unless there is news since: their site's live weather or
their telescope's downtime (``live_copy_now``), so a copy under a sky that has
clouded over is backed up while other sites' nights are still ahead.

Units: times are aware UTC datetimes at the interface, float seconds since
the plan's epoch inside; durations in seconds; angles in degrees.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time

from observatories.visibility import compute_grid

PLANNER_NAME = "baton.redundant-planner"
PLANNER_VERSION = "1.1"

# A copy that starts this long after another copy ends is cancelled in time if that one succeeds.
CANCEL_LATENCY_S = 15 * 60.0
# Greedy selection stops adding copies beyond this many per request (best effort).
MAX_COPIES = 5
# Share of a facility-night's dark time Baton may book (the rest serves the facility's other users).
DEFAULT_CAPACITY_FRACTION = 0.8
DEFAULT_STEP = timedelta(minutes=5)
# Two chances at one site closer than this are on the same night.
SAME_NIGHT = timedelta(hours=12)
DEFAULT_HORIZON = timedelta(days=3)


@dataclass(frozen=True)
class SiteSpec:
    """An observatory site: position and its weather prior.

    clear_fraction: long-run fraction of clear night hours (0..1).
    clear_spell_nights / cloudy_spell_nights: mean length of clear and cloudy
    spells in nights; with the clear fraction they define the Markov chain.
    weather_now: the site's live state, "clear", "cloudy" or None (unknown).
    weather_at: when that state was observed (None: now).
    """

    code: str
    latitude_deg: float
    longitude_deg: float
    elevation_m: float
    clear_fraction: float
    clear_spell_nights: float
    cloudy_spell_nights: float
    weather_now: str | None = None
    weather_at: datetime | None = None


@dataclass(frozen=True)
class FacilitySpec:
    """A facility: its site, telescope class, and how reliable it is.

    p_operational: probability it works when the sky is clear (status and record).
    down_until: no chance starts before this (injected downtime), or None.
    """

    code: str
    site_code: str
    telescope_class: str
    p_operational: float = 0.95
    down_until: datetime | None = None
    # Facilities with one chance key are one chance (a portal places a group on any telescope of the class at
    # the site): never two copies on one key and night, even where ``allow_same_site``. "" = the facility's code.
    chance_key: str = ""


@dataclass(frozen=True)
class LiveCopy:
    """A copy already dispatched for a request (it counts toward the target)."""

    facility_code: str
    site_code: str
    start: datetime
    end: datetime
    p: float
    duration_s: float
    chance_key: str = ""


@dataclass(frozen=True)
class RequestSpec:
    """One follow-up goal to plan (one visit of a request).

    duration_s: telescope time one observation takes (exposures, readouts, overheads).
    target_load: observations of this target already under way or recent
        (diminishing returns for piling time on one target).
    team_factor: the team's fair-share factor (policies), ~0.5..1.5.
    live: copies already dispatched and still alive.
    excluded_sites: sites not to use again for this visit.
    excluded_facilities: facilities not to use again for this visit (e.g. one that refused it).
    failed: (site code, chance start) of copies that failed: that site-night is spent.
    """

    id: int
    ra_deg: float
    dec_deg: float
    telescope_class: str
    duration_s: float
    window_start: datetime
    window_end: datetime
    success_probability: float = 0.95
    priority: float = 1.0
    max_airmass: float = 2.0
    min_moon_separation_deg: float = 30.0
    sun_max_alt_deg: float = -12.0
    allow_same_site: bool = False
    target_key: str = ""
    target_load: int = 0
    team_factor: float = 1.0
    live: tuple[LiveCopy, ...] = ()
    excluded_sites: frozenset[str] = frozenset()
    excluded_facilities: frozenset[str] = frozenset()
    failed: tuple[tuple[str, datetime], ...] = ()


@dataclass(frozen=True)
class Chance:
    """One facility-night on which the request can be observed."""

    request_id: int
    facility_code: str
    site_code: str
    start: datetime
    end: datetime
    p_visible: float
    p_clear: float
    p_operational: float
    duration_s: float
    # p(clear) given that the site was cloudy the night before: weather persists, so a second
    # copy at a site counts with this when an earlier copy there would have failed.
    p_clear_after_cloudy: float | None = None
    chance_key: str = ""

    @property
    def p(self) -> float:
        return self.p_visible * self.p_clear * self.p_operational

    def p_given_earlier_failure_at_site(self) -> float:
        p_clear = self.p_clear if self.p_clear_after_cloudy is None else min(self.p_clear, self.p_clear_after_cloudy)
        return self.p_visible * p_clear * self.p_operational


@dataclass
class RequestPlan:
    """The planner's answer for one request.

    chosen: new copies to dispatch (in time order).
    p_total: combined success probability of live + chosen copies.
    reached: whether p_total reaches the request's target.
    outcome: "planned", "already covered", "never visible", "window too short",
        "outranked" (visible, but the time went to higher-priority requests),
        "under target" (best effort below the target probability).
    expected_cost_s: expected telescope time of live + chosen copies.
    chances: every chance the planner could use (after exclusions and capacity), in the order found.
    """

    request_id: int
    chosen: list[Chance] = field(default_factory=list)
    p_total: float = 0.0
    reached: bool = False
    outcome: str = "never visible"
    expected_cost_s: float = 0.0
    chances_seen: int = 0
    chances: list[Chance] = field(default_factory=list)


def p_clear_at(site: SiteSpec, *, at: datetime, now: datetime) -> float:
    """Probability that ``site`` is clear at ``at``, from its Markov weather model.

    The two-state chain has per-night transition probabilities
    a = 1/clear_spell (clear->cloudy) and b = 1/cloudy_spell (cloudy->clear),
    stationary clear probability pi = b/(a+b) and memory lambda = 1-a-b. Given
    the live state x0 (1 clear, 0 cloudy) observed at ``weather_at``, the
    chance of clear sky dt nights later is pi + (x0 - pi) lambda^dt. Unknown
    live state: pi, which is the site's clear fraction when the spell lengths
    agree with it.
    """
    a = 1.0 / max(site.clear_spell_nights, 1.0)
    b = 1.0 / max(site.cloudy_spell_nights, 1.0)
    pi = b / (a + b) if site.clear_fraction is None else float(site.clear_fraction)
    if site.weather_now not in ("clear", "cloudy"):
        return pi
    x0 = 1.0 if site.weather_now == "clear" else 0.0
    lam = max(0.0, 1.0 - a - b)
    since = site.weather_at or now
    dt_nights = max(0.0, (at - since).total_seconds() / 86400.0)
    return float(min(1.0, max(0.0, pi + (x0 - pi) * lam**dt_nights)))


def live_copy_now(copy: LiveCopy, *, site: SiteSpec | None, facility: FacilitySpec | None, now: datetime) -> LiveCopy:
    """A live copy's success probability re-read with what is known now.

    A copy keeps the probability it was dispatched with unless there is news:
    its facility is down through the copy's window (p = 0), or its site has a
    live weather state (p = p(clear) from that state x the facility's
    p(operational)). Without this, a copy at a site that has just clouded over
    (or at a telescope that has just gone down) would still count toward the
    target, and the planner would add no backup until the copy had failed, by
    which time the other sites' nights may be over.
    """
    if facility is not None and facility.down_until is not None and facility.down_until >= copy.end:
        return copy if copy.p == 0.0 else replace(copy, p=0.0)
    if site is None or site.weather_now not in ("clear", "cloudy"):
        return copy
    p_operational = facility.p_operational if facility is not None else 1.0
    p = p_clear_at(site, at=copy.start, now=now) * p_operational
    return replace(copy, p=p)


def _night_key(t_s: np.ndarray, longitude_deg: float, *, epoch: datetime) -> np.ndarray:
    """Integer night number at a site of times ``t_s`` seconds after ``epoch``.

    The local solar date of the evening: nights change at local noon, so one
    night's dark hours share one number wherever the site is.
    """
    absolute_days = (epoch.timestamp() + t_s) / 86400.0
    return np.floor(absolute_days + longitude_deg / 360.0 - 0.5).astype(np.int64)


def expected_cost(copies: Sequence[tuple[float, float, float, float]]) -> float:
    """Expected telescope time of copies (start_s, end_s, p, duration_s).

    A copy is used only if no copy that finished (plus the cancel latency)
    before it starts has succeeded, and then it spends its time with
    probability p (a clouded-out or broken attempt books no time).
    """
    total = 0.0
    for start, _end, p, duration in copies:
        q = 1.0
        for other_start, other_end, other_p, _ in copies:
            if other_start is start:
                continue
            if other_end + CANCEL_LATENCY_S <= start:
                q *= 1.0 - other_p
        total += duration * p * q
    return total


def choose_chances(
    *,
    chances: Sequence[Chance],
    live: Sequence[LiveCopy],
    target_p: float,
    epoch: datetime,
    allow_same_site: bool = False,
    max_copies: int = MAX_COPIES,
) -> tuple[list[Chance], float, float]:
    """Pick the cheapest set of chances that, with the live copies, reaches ``target_p``.

    Greedy on the ratio of reliability gained, -log(1-p) (additive over
    independent copies), to expected telescope time added; ties go to the
    earlier chance. At most one copy per site and night (copies under one sky
    share its weather) unless ``allow_same_site``, live copies included. Returns (chosen in time order,
    combined probability, expected cost in seconds).
    """

    def as_tuple(start: datetime, end: datetime, p: float, duration: float) -> tuple[float, float, float, float]:
        return ((start - epoch).total_seconds(), (end - epoch).total_seconds(), p, duration)

    copies = [as_tuple(c.start, c.end, c.p, c.duration_s) for c in live]
    fail = math.prod(1.0 - c.p for c in live)
    # A live copy that can no longer succeed (its telescope is down) does not hold its site-night:
    # another telescope under the same sky may take it.
    taken: list[tuple[str, datetime]] = [(c.site_code, c.start) for c in live if c.p > 0.0]
    taken_keys: list[tuple[str, datetime]] = [(c.chance_key or c.facility_code, c.start) for c in live]
    chosen: list[Chance] = []
    cost = expected_cost(copies)
    pool = sorted((c for c in chances if c.p > 0.0), key=lambda c: (c.start, -c.p))

    def same_site_night(chance: Chance) -> bool:
        # Two copies under one sky share its weather: one per site per night unless asked.
        return any(site == chance.site_code and abs(start - chance.start) < SAME_NIGHT for site, start in taken)

    def effective_p(chance: Chance) -> float:
        # All copies fail together only if this one fails too, which after an earlier failure at
        # the same site is likelier than the prior says (the cloud may still be there).
        if any(site == chance.site_code and start < chance.start for site, start in taken):
            return chance.p_given_earlier_failure_at_site()
        return chance.p

    while 1.0 - fail < target_p and len(chosen) < max_copies:
        best: tuple[float, int] | None = None
        best_cost = cost
        for index, chance in enumerate(pool):
            if not allow_same_site and same_site_night(chance):
                continue
            key = chance.chance_key or chance.facility_code
            if any(k == key and abs(start - chance.start) < SAME_NIGHT for k, start in taken_keys):
                continue  # one portal's telescopes of a class at a site are one chance, not several
            p = effective_p(chance)
            trial = [*copies, as_tuple(chance.start, chance.end, p, chance.duration_s)]
            trial_cost = expected_cost(trial)
            gain = -math.log(max(1e-12, 1.0 - p))
            # A small floor on the added cost keeps a far-off backup from looking free.
            score = gain / (max(0.0, trial_cost - cost) + 0.05 * chance.duration_s)
            if best is None or score > best[0] + 1e-12:
                best, best_cost = (score, index), trial_cost
        if best is None:
            break
        chance = pool.pop(best[1])
        p = effective_p(chance)
        chosen.append(chance)
        copies.append(as_tuple(chance.start, chance.end, p, chance.duration_s))
        taken.append((chance.site_code, chance.start))
        taken_keys.append((chance.chance_key or chance.facility_code, chance.start))
        fail *= 1.0 - p
        cost = best_cost
    chosen.sort(key=lambda c: c.start)
    return chosen, 1.0 - fail, cost


@dataclass
class _Grid:
    epoch: datetime
    times_s: np.ndarray  # (T,) seconds since epoch
    step_s: float
    observable: np.ndarray  # (R, S, T) bool, per request
    dark: np.ndarray  # (S, T) bool: Sun below -12 deg


def _visibility(
    *, requests: Sequence[RequestSpec], sites: Sequence[SiteSpec], now: datetime, horizon: timedelta, step: timedelta
) -> _Grid:
    end = min(max(r.window_end for r in requests), now + horizon)
    n_steps = max(2, int(math.ceil((end - now) / step)) + 1)
    step_s = step.total_seconds()
    times_s = np.arange(n_steps) * step_s
    times = Time(now) + times_s * u.s
    # One engine call for every distinct target position.
    positions = {(r.ra_deg, r.dec_deg) for r in requests}
    keys = sorted(positions)
    index = {k: i for i, k in enumerate(keys)}
    coords = SkyCoord(ra=[k[0] for k in keys] * u.deg, dec=[k[1] for k in keys] * u.deg)
    locations = EarthLocation.from_geodetic(
        lon=[s.longitude_deg for s in sites] * u.deg,
        lat=[s.latitude_deg for s in sites] * u.deg,
        height=[s.elevation_m for s in sites] * u.m,
    )
    grid = compute_grid(targets=coords, sites=locations, times=times)
    rows = np.array([index[(r.ra_deg, r.dec_deg)] for r in requests])
    min_sin = np.array([1.0 / max(r.max_airmass, 1.0) for r in requests])[:, None, None]
    max_cos_moon = np.cos(np.radians([r.min_moon_separation_deg for r in requests]))[:, None, None]
    sun_max = np.array([r.sun_max_alt_deg for r in requests])[:, None, None]
    start_s = np.array([(r.window_start - now).total_seconds() for r in requests])[:, None, None]
    end_s = np.array([(r.window_end - now).total_seconds() for r in requests])[:, None, None]
    observable = grid.sin_altitude[rows] >= min_sin
    observable &= grid.cos_moon_separation[rows] <= max_cos_moon
    observable &= grid.sun_altitude_deg[None, :, :] <= sun_max
    observable &= (times_s[None, None, :] >= start_s) & (times_s[None, None, :] <= end_s)
    return _Grid(
        epoch=now, times_s=times_s, step_s=step_s, observable=observable, dark=grid.sun_altitude_deg <= -12.0
    )


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along the last axis of (R, S, T): (request, site, first, last) index arrays."""
    r, s, t = mask.shape
    padded = np.zeros((r, s, t + 2), dtype=np.int8)
    padded[:, :, 1:-1] = mask
    d = np.diff(padded, axis=-1)
    ri, si, first = np.nonzero(d == 1)
    _, _, stop = np.nonzero(d == -1)
    return ri, si, first, stop - 1


def plan_network(
    *,
    requests: Sequence[RequestSpec],
    sites: Sequence[SiteSpec],
    facilities: Sequence[FacilitySpec],
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    step: timedelta = DEFAULT_STEP,
    capacity_fraction: float = DEFAULT_CAPACITY_FRACTION,
    booked_s: dict[tuple[str, int], float] | None = None,
) -> dict[int, RequestPlan]:
    """Plan every request over the whole network at once.

    Args:
        requests: the open goals (one visit each).
        sites, facilities: the network; a facility whose site is not in
            ``sites`` is ignored.
        now: the planning time (aware UTC); nothing is planned before it.
        horizon: how far ahead chances are sought (later ones: next run).
        step: the visibility grid step; chance edges are good to one step.
        capacity_fraction: share of each facility-night's dark time bookable.
        booked_s: seconds already booked per (facility code, night number).

    Returns:
        {request id: RequestPlan}.
    """
    plans = {r.id: RequestPlan(request_id=r.id) for r in requests}
    live_requests = [r for r in requests if r.window_end > now]
    for r in requests:
        if r.window_end <= now:
            plans[r.id].outcome = "window over"
    if not live_requests or not sites or not facilities:
        return plans
    site_index = {s.code: i for i, s in enumerate(sites)}
    facilities = [f for f in facilities if f.site_code in site_index]
    site_by_code = {s.code: s for s in sites}
    facility_by_code = {f.code: f for f in facilities}
    grid = _visibility(requests=live_requests, sites=sites, now=now, horizon=horizon, step=step)

    # Capacity per facility-night, from the dark time at its site.
    night_of = [_night_key(grid.times_s, s.longitude_deg, epoch=now) for s in sites]
    capacity: dict[tuple[str, int], float] = defaultdict(float)
    for f in facilities:
        si = site_index[f.site_code]
        nights, counts = np.unique(night_of[si][grid.dark[si]], return_counts=True)
        for night, count in zip(nights.tolist(), counts.tolist(), strict=True):
            capacity[(f.code, night)] = count * grid.step_s * capacity_fraction
    for key, seconds in (booked_s or {}).items():
        capacity[key] = capacity.get(key, 0.0) - seconds

    # Every observable run long enough for the observation is a chance at each matching facility.
    run_req, run_site, run_first, run_last = _runs(grid.observable)
    run_s = (run_last - run_first + 1) * grid.step_s
    by_class_site: dict[tuple[str, int], list[FacilitySpec]] = defaultdict(list)
    for f in facilities:
        by_class_site[(f.telescope_class, site_index[f.site_code])].append(f)
    runs_per_request: dict[int, list[tuple[int, int, int, float]]] = defaultdict(list)
    for k in range(run_req.size):
        runs_per_request[int(run_req[k])].append(
            (int(run_site[k]), int(run_first[k]), int(run_last[k]), float(run_s[k]))
        )

    load: dict[str, int] = defaultdict(int)
    for r in live_requests:
        load[r.target_key or f"{r.ra_deg:.5f},{r.dec_deg:.5f}"] = max(
            load[r.target_key or f"{r.ra_deg:.5f},{r.dec_deg:.5f}"], r.target_load
        )

    def urgency(r: RequestSpec) -> float:
        hours_left = max(1.0, (r.window_end - now).total_seconds() / 3600.0)
        return 1.0 + 24.0 / hours_left

    order = sorted(range(len(live_requests)), key=lambda i: -live_requests[i].priority * urgency(live_requests[i]))
    # Diminishing returns: each goal already given to a target divides the next one's priority.
    planned_for_target: dict[str, int] = defaultdict(int)
    remaining = list(order)
    while remaining:
        scored = []
        for i in remaining:
            r = live_requests[i]
            target_key = r.target_key or f"{r.ra_deg:.5f},{r.dec_deg:.5f}"
            depth = load[target_key] + planned_for_target[target_key]
            scored.append((-(r.priority * r.team_factor * urgency(r)) / math.sqrt(1.0 + depth), r.window_end, i))
        scored.sort()
        _, _, i = scored[0]
        remaining.remove(i)
        r = live_requests[i]
        target_key = r.target_key or f"{r.ra_deg:.5f},{r.dec_deg:.5f}"
        plan = plans[r.id]
        chances: list[Chance] = []
        saw_visible = False
        saw_capacity_block = False
        for s_i, t0, t1, seconds in runs_per_request.get(i, []):
            site = sites[s_i]
            if site.code in r.excluded_sites:
                continue
            saw_visible = True
            if seconds + grid.step_s < r.duration_s:
                continue
            start = now + timedelta(seconds=float(grid.times_s[t0]))
            end = now + timedelta(seconds=float(grid.times_s[t1]))
            if start < now:
                start = now
            if (end - start).total_seconds() < r.duration_s:
                continue  # a run already under way when clipped to now: too little of it is left
            night = int(night_of[s_i][t0])
            p_clear = p_clear_at(site, at=start, now=now)
            p_after_cloudy = 1.0 / max(site.cloudy_spell_nights, 1.0)
            if any(code == site.code and abs(at - start) < SAME_NIGHT for code, at in r.failed):
                continue
            for f in by_class_site.get((r.telescope_class, s_i), []):
                if f.code in r.excluded_facilities:
                    continue
                if f.down_until is not None and f.down_until >= end:
                    continue
                if capacity.get((f.code, night), 0.0) < r.duration_s:
                    saw_capacity_block = True
                    continue
                chances.append(
                    Chance(
                        request_id=r.id, facility_code=f.code, site_code=site.code, start=start, end=end,
                        p_visible=1.0, p_clear=p_clear, p_operational=f.p_operational, duration_s=r.duration_s,
                        p_clear_after_cloudy=p_after_cloudy, chance_key=f.chance_key,
                    )
                )
        plan.chances_seen = len(chances)
        plan.chances = chances
        live = [
            live_copy_now(c, site=site_by_code.get(c.site_code), facility=facility_by_code.get(c.facility_code), now=now)
            for c in r.live
        ]
        chosen, p_total, cost = choose_chances(
            chances=chances, live=live, target_p=r.success_probability, epoch=now,
            allow_same_site=r.allow_same_site,
        )
        plan.chosen, plan.p_total, plan.expected_cost_s = chosen, p_total, cost
        plan.reached = p_total >= r.success_probability - 1e-9
        if r.live and not chosen and plan.reached:
            plan.outcome = "already covered"
        elif chosen:
            plan.outcome = "planned" if plan.reached else "under target"
        elif r.live:
            plan.outcome = "under target"
        elif saw_capacity_block:
            plan.outcome = "outranked"
        elif saw_visible:
            plan.outcome = "window too short"
        else:
            plan.outcome = "never visible"
        for c in chosen:
            offset = np.array([(c.start - now).total_seconds()])
            night = int(_night_key(offset, sites[site_index[c.site_code]].longitude_deg, epoch=now)[0])
            capacity[(c.facility_code, night)] -= c.duration_s
        if chosen:
            planned_for_target[target_key] += 1
    return plans
