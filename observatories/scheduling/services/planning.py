"""Creating requests and planning the network: the database side of the redundant planner.

``request_submit`` validates and stores a goal; ``network_plan`` reads every
open request, the network and its live status, runs the pure planner
(``observatories.scheduling.planner``) once for all of them, and turns its
choices into queued ``Dispatch`` rows whose submission is enqueued when the
transaction commits. Only one planning run writes at a time (a PostgreSQL
advisory lock), and a run that sees a request already covered by live copies
adds nothing, so running it again, from beat, after a failure or after a
status change, is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from observatories.models import Facility, FacilityStatus, Site

from .. import hooks
from ..models import DISPATCH_LIVE, Dispatch, DispatchState, ObservingRequest, RequestState
from ..planner import (
    PLANNER_NAME,
    PLANNER_VERSION,
    FacilitySpec,
    LiveCopy,
    RequestPlan,
    RequestSpec,
    SiteSpec,
    plan_network,
)
from .lifecycle import request_transition

logger = logging.getLogger(__name__)

PLAN_LOCK_ID = 0x6261746F6E  # "baton": one planning run at a time, across processes
STATUS_STALE_AFTER = timedelta(minutes=30)
MAX_COPIES_PER_VISIT = 15
MAX_EXPOSURE_ENTRIES = 20
# How far ahead a goal may reach: a portal takes windows within its semesters, a year is already two of them.
MAX_WINDOW_AHEAD = timedelta(days=400)


class RequestInvalid(ValueError):
    """A request that cannot be accepted; the message says which field and why."""


@dataclass(frozen=True)
class ExposureSpec:
    filter: str
    exposure_s: float
    count: int


def _clean_exposures(exposures: Any) -> list[dict[str, Any]]:
    if not isinstance(exposures, list) or not exposures:
        raise RequestInvalid("exposures: give at least one {filter, exposure_s, count}")
    if len(exposures) > MAX_EXPOSURE_ENTRIES:
        raise RequestInvalid(f"exposures: at most {MAX_EXPOSURE_ENTRIES} entries")
    cleaned = []
    for i, item in enumerate(exposures):
        if not isinstance(item, dict):
            raise RequestInvalid(f"exposures[{i}]: must be an object")
        name = str(item.get("filter", "")).strip()
        try:
            seconds = float(item.get("exposure_s"))  # type: ignore[arg-type]  # None -> TypeError, reported below
            count = int(item.get("count", 1))
        except (TypeError, ValueError):
            raise RequestInvalid(f"exposures[{i}]: exposure_s and count must be numbers") from None
        if not name:
            raise RequestInvalid(f"exposures[{i}]: filter is required")
        if not (0.0 < seconds <= 3600.0):
            raise RequestInvalid(f"exposures[{i}]: exposure_s must be in (0, 3600]")
        if not (1 <= count <= 100):
            raise RequestInvalid(f"exposures[{i}]: count must be in [1, 100]")
        cleaned.append({"filter": name, "exposure_s": seconds, "count": count})
    return cleaned


def request_submit(
    *,
    target: Any,
    team: Group,
    requester: Any | None,
    telescope_class: str,
    exposures: list[dict[str, Any]],
    window_start: datetime,
    window_end: datetime,
    cadence_period: timedelta | None = None,
    cadence_visits: int = 1,
    max_airmass: float = 2.0,
    min_moon_separation_deg: float = 30.0,
    sun_max_alt_deg: float = -12.0,
    priority: float = 5.0,
    success_probability: float = 0.95,
    allow_same_site: bool = False,
    source: str = "manual",
    now: datetime | None = None,
) -> ObservingRequest:
    """Validate and store a follow-up goal, then plan it when the transaction commits.

    Raises RequestInvalid (nothing is written) for: a window that is not
    ordered or already over, bad exposures, no enabled facility of
    ``telescope_class``, a filter no instrument of that class has, a cadence
    that does not fit the window, or a team allocation that refuses it.
    """
    now = now or timezone.now()
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise RequestInvalid("window: times must carry a time zone (UTC)")
    if window_end <= window_start:
        raise RequestInvalid("window: window_end must be after window_start")
    if window_end <= now:
        raise RequestInvalid("window: it is already over")
    if window_start < now - timedelta(days=1) or window_end > now + MAX_WINDOW_AHEAD:
        raise RequestInvalid(
            f"window: it must start no earlier than a day ago and end within {MAX_WINDOW_AHEAD.days} days from now"
        )
    cleaned = _clean_exposures(exposures)
    facilities = Facility.objects.filter(enabled=True).filter(
        Q(telescope_class=telescope_class) | Q(also_serves__contains=[telescope_class])
    )
    if not facilities.exists():
        raise RequestInvalid(f"telescope_class: no enabled facility of class {telescope_class!r}")
    filters = {f for fac in facilities.prefetch_related("instruments") for i in fac.instruments.all() for f in i.filters}
    missing = sorted({e["filter"] for e in cleaned} - filters)
    if filters and missing:
        raise RequestInvalid(f"exposures: no {telescope_class} instrument has filter(s) {', '.join(missing)}")
    if not (0.01 <= success_probability <= 0.999):
        raise RequestInvalid("success_probability: must be in [0.01, 0.999]")
    if cadence_visits < 1:
        raise RequestInvalid("cadence_visits: must be at least 1")
    if cadence_visits > 1:
        if cadence_period is None or cadence_period <= timedelta(0):
            raise RequestInvalid("cadence_period: required (and positive) with more than one visit")
        if window_start + cadence_period * (cadence_visits - 1) >= window_end:
            raise RequestInvalid("cadence: the visits do not fit in the window")
    request = ObservingRequest(
        target=target, team=team, requester=requester, telescope_class=telescope_class, exposures=cleaned,
        window_start=window_start, window_end=window_end, cadence_period=cadence_period,
        cadence_visits=cadence_visits, max_airmass=max_airmass, min_moon_separation_deg=min_moon_separation_deg,
        sun_max_alt_deg=sun_max_alt_deg, priority=priority, success_probability=success_probability,
        allow_same_site=allow_same_site, source=source,
    )
    if cadence_visits > 1 and cadence_period is not None and cadence_period.total_seconds() < request.duration_s():
        raise RequestInvalid(
            f"cadence: each visit's slice ({cadence_period.total_seconds():.0f} s) is shorter than the observation "
            f"({request.duration_s():.0f} s)"
        )
    hours = request.duration_s() / 3600.0 * cadence_visits
    allocation = hooks.allocation_check(team=team, telescope_class=telescope_class, hours=hours)
    if not allocation.allowed and allocation.action == "refuse":
        raise RequestInvalid(f"allocation: {allocation.reason or 'the team has no time left on ' + telescope_class}")
    with transaction.atomic():
        request.save()
        hooks.interest_record(target=target, team=team, source=f"request:{source}")
        request.transitions.create(
            from_state="", to_state=RequestState.PENDING, actor=getattr(requester, "username", source)[:100],
            reason=f"submitted ({source})" + (f"; queued: {allocation.reason}" if not allocation.allowed else ""),
            at=now,
        )
        if allocation.allowed:
            from ..tasks import network_plan_task

            network_plan_task.delay_on_commit()  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    return request


# --- planning -----------------------------------------------------------------------------


def _site_specs(*, now: datetime) -> tuple[list[SiteSpec], dict[int, str]]:
    """Sites with their live weather: cloudy if any of its facilities reports weather."""
    latest = {
        s.facility_id: s
        for s in FacilityStatus.objects.order_by("facility_id", "-fetched_at", "-id").distinct("facility_id")
    }
    facility_site = dict(Facility.objects.values_list("id", "site__code"))
    weather: dict[str, tuple[str, datetime]] = {}
    for facility_id, status in latest.items():
        if now - status.fetched_at > STATUS_STALE_AFTER:
            continue
        site_code = facility_site.get(facility_id)
        if site_code is None:
            continue
        if status.state == FacilityStatus.State.WEATHER:
            weather[site_code] = ("cloudy", status.observed_at)
        elif status.state == FacilityStatus.State.AVAILABLE and site_code not in weather:
            weather[site_code] = ("clear", status.observed_at)
    specs = []
    for site in Site.objects.all():
        state, at = weather.get(site.code) or (None, None)
        specs.append(
            SiteSpec(
                code=site.code, latitude_deg=site.latitude_deg, longitude_deg=site.longitude_deg,
                elevation_m=site.elevation_m, clear_fraction=site.clear_fraction,
                clear_spell_nights=site.clear_spell_nights, cloudy_spell_nights=site.cloudy_spell_nights,
                weather_now=state, weather_at=at,
            )
        )
    return specs, {fid: status.state for fid, status in latest.items() if now - status.fetched_at <= STATUS_STALE_AFTER}


def facility_reliability(*, now: datetime, days: int = 30) -> dict[int, float]:
    """p(operational) per facility from its recent record: Beta(19, 1) prior on non-weather failures."""
    since = now - timedelta(days=days)
    rows = (
        Dispatch.objects.filter(finished_at__gte=since)
        .values("facility_id")
        .annotate(
            ok=Count("id", filter=Q(state=DispatchState.COMPLETED)),
            # A refusal at submission (no remote id) says the copy was wrong, not that the telescope broke.
            broken=Count("id", filter=Q(state=DispatchState.FAILED_OTHER) & ~Q(remote_id="")),
        )
    )
    return {r["facility_id"]: (r["ok"] + 19.0) / (r["ok"] + r["broken"] + 20.0) for r in rows}


def _facility_specs(*, now: datetime, live_state: dict[int, str]) -> tuple[list[FacilitySpec], dict[str, Facility]]:
    reliability = facility_reliability(now=now)
    specs, by_code = [], {}
    for facility in Facility.objects.filter(enabled=True).select_related("site"):
        state = live_state.get(facility.id)
        down_until = now + timedelta(hours=12) if state == FacilityStatus.State.DOWNTIME else None
        # One spec per request class it takes (its own, and those it also serves); they share its capacity.
        for telescope_class in dict.fromkeys([facility.telescope_class, *(facility.also_serves or [])]):
            specs.append(
                FacilitySpec(
                    code=facility.code, site_code=facility.site.code, telescope_class=telescope_class,
                    p_operational=reliability.get(facility.id, 0.95), down_until=down_until,
                    chance_key=facility.chance_key,
                )
            )
        by_code[facility.code] = facility
    return specs, by_code


def _serving(by_code: dict[str, Facility]) -> dict[str, list[Facility]]:
    """Request class -> the enabled facilities that take copies of it (their own class and those they also serve)."""
    out: dict[str, list[Facility]] = {}
    for facility in by_code.values():
        for telescope_class in dict.fromkeys([facility.telescope_class, *(facility.also_serves or [])]):
            out.setdefault(telescope_class, []).append(facility)
    return out


def _without_proposal(
    request: ObservingRequest, *, serving: list[Facility], now: datetime, memo: dict[tuple[int, str], bool]
) -> frozenset[str]:
    """Portal facilities among ``serving`` where the request's team has no proposal: not a chance for that team.
    (A TOM module's facility carries its programme in its own parameters.)"""
    from observatories.portal.facility import speaks_portal_api_path

    out = []
    for facility in serving:
        if not speaks_portal_api_path(facility.adapter):
            continue
        key = (request.team_id, facility.code)
        if key not in memo:
            memo[key] = bool(hooks.proposal_for(team=request.team, facility=facility, at=now))
        if not memo[key]:
            out.append(facility.code)
    return frozenset(out)


def _request_spec(
    request: ObservingRequest, *, live: Sequence[Dispatch], failed: Sequence[Dispatch], load: int, now: datetime,
    no_proposal: frozenset[str] = frozenset(), same_chance: dict[str, frozenset[str]] | None = None,
) -> RequestSpec:
    start, end = request.visit_window()
    return RequestSpec(
        id=request.pk, ra_deg=float(request.target.ra), dec_deg=float(request.target.dec),
        telescope_class=request.telescope_class, duration_s=request.duration_s(),
        window_start=max(start, now), window_end=end, success_probability=request.success_probability,
        priority=request.priority, max_airmass=request.max_airmass,
        min_moon_separation_deg=request.min_moon_separation_deg, sun_max_alt_deg=request.sun_max_alt_deg,
        allow_same_site=request.allow_same_site, target_key=str(request.target_id), target_load=load,
        team_factor=hooks.team_factor(team=request.team),
        # A facility that failed or refused this visit is not asked again; a site-night lost to weather (or a
        # window that ran out there) is spent, but a broken telescope leaves its site-mates that night usable.
        # (A portal that refused a copy refuses it at every telescope it places on: the whole chance key is out.)
        excluded_facilities=frozenset(
            code for d in failed if d.state == DispatchState.FAILED_OTHER
            for code in (same_chance or {}).get(d.facility.chance_key, frozenset({d.facility.code}))
        )
        | no_proposal,
        # A live copy with a failed attempt has spent its site-night too: the facility retries it there itself.
        failed=tuple((d.facility.site.code, d.window_start) for d in failed if d.state != DispatchState.FAILED_OTHER)
        + tuple((d.facility.site.code, d.window_start) for d in live if d.failed_attempts),
        live=tuple(
            LiveCopy(
                facility_code=d.facility.code, site_code=d.facility.site.code, start=d.window_start,
                end=d.window_end, p=d.p_success, duration_s=d.duration_s, chance_key=d.facility.chance_key,
            )
            for d in live
        ),
    )


def open_requests(*, now: datetime, request_ids: Iterable[int] | None = None) -> list[ObservingRequest]:
    """Requests the planner should look at: open, and with time left in their window."""
    qs = ObservingRequest.objects.filter(
        state__in=[RequestState.PENDING, RequestState.PLANNED, RequestState.DISPATCHED, RequestState.IN_PROGRESS],
        window_end__gt=now,
    ).select_related("target", "team")
    if request_ids is not None:
        qs = qs.filter(pk__in=list(request_ids))
    return list(qs)


def network_plan(*, now: datetime | None = None, request_ids: Iterable[int] | None = None) -> dict[int, RequestPlan]:
    """Plan every open request (or those named) over the network; queue the chosen copies.

    Returns the planner's verdict per request. Returns {} without doing
    anything when another planning run holds the lock (it will cover these).
    """
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PLAN_LOCK_ID])
            if not cursor.fetchone()[0]:
                logger.info("another planning run is in progress; skipping")
                return {}
        requests = open_requests(now=now, request_ids=request_ids)
        if not requests:
            return {}
        live = list(
            Dispatch.objects.filter(state__in=DISPATCH_LIVE).select_related("facility__site")
        )
        live_by_visit: dict[tuple[int, int], list[Dispatch]] = {}
        failed_by_visit: dict[tuple[int, int], list[Dispatch]] = {}
        for d in Dispatch.objects.filter(
            request__in=requests,
            state__in=[DispatchState.FAILED_OTHER, DispatchState.FAILED_WEATHER, DispatchState.EXPIRED],
        ).select_related("facility__site"):
            failed_by_visit.setdefault((d.request_id, d.visit), []).append(d)
        load: dict[int, int] = {}
        booked: dict[tuple[str, int], float] = {}
        for d in live:
            live_by_visit.setdefault((d.request_id, d.visit), []).append(d)
        for target_id, count in (
            Dispatch.objects.filter(state__in=DISPATCH_LIVE).values_list("request__target_id").annotate(n=Count("id"))
        ):
            load[target_id] = count
        sites, live_state = _site_specs(now=now)
        facilities, by_code = _facility_specs(now=now, live_state=live_state)
        memo: dict[tuple[int, str], bool] = {}
        serving = _serving(by_code)
        no_proposal = {
            r.pk: _without_proposal(r, serving=serving.get(r.telescope_class, []), now=now, memo=memo) for r in requests
        }
        keyed: dict[str, set[str]] = {}
        for code, facility in by_code.items():
            keyed.setdefault(facility.chance_key, set()).add(code)
        same_chance = {key: frozenset(codes) for key, codes in keyed.items()}
        specs = [
            _request_spec(
                r, live=live_by_visit.get((r.pk, r.visit), []), failed=failed_by_visit.get((r.pk, r.visit), []),
                load=load.get(r.target_id, 0), now=now, no_proposal=no_proposal[r.pk], same_chance=same_chance,
            )
            for r in requests
        ]
        # Requests on targets that have no usable coordinates are answered, not planned.
        plans = plan_network(requests=specs, sites=sites, facilities=facilities, now=now, booked_s=booked)
        by_id = {r.pk: r for r in requests}
        for request_id, plan in plans.items():
            codes = {f.code for f in serving.get(by_id[request_id].telescope_class, [])}
            if not plan.chosen and not plan.reached and codes and codes <= no_proposal[request_id]:
                # Say why: no facility that could observe it takes the team's requests (no proposal there).
                plan.outcome = "no proposal"
            _apply_plan(by_id[request_id], plan, by_code=by_code, now=now)
    return plans


def _apply_plan(request: ObservingRequest, plan: RequestPlan, *, by_code: dict[str, Facility], now: datetime) -> None:
    from ..tasks import dispatch_submit_task

    if plan.chosen and Dispatch.objects.filter(request=request, visit=request.visit).count() + len(plan.chosen) > MAX_COPIES_PER_VISIT:
        # A safety valve, not a strategy: something keeps failing; stop and say so.
        request_transition(
            request_id=request.pk, to=RequestState.FAILED, now=now, actor=PLANNER_NAME,
            reason=f"more than {MAX_COPIES_PER_VISIT} copies tried for visit {request.visit + 1}; see their reasons",
        )
        hooks.notify(event="request.failed", request=request, reason="too many failed copies")
        return
    ObservingRequest.objects.filter(pk=request.pk).update(
        plan_outcome=plan.outcome, plan_probability=plan.p_total, planned_at=now
    )
    if not plan.chosen:
        return
    for chance in plan.chosen:
        dispatch = Dispatch.objects.create(
            request=request, visit=request.visit, facility=by_code[chance.facility_code],
            window_start=chance.start, window_end=chance.end, p_success=chance.p, p_clear=chance.p_clear,
            duration_s=chance.duration_s,
        )
        dispatch.transitions.create(
            from_state="", to_state=DispatchState.QUEUED, at=now,
            reason=f"{PLANNER_NAME} {PLANNER_VERSION}: p={chance.p:.2f} (clear {chance.p_clear:.2f}, "
            f"operational {chance.p_operational:.2f}); visit p_total={plan.p_total:.3f}",
        )
        dispatch_submit_task.delay_on_commit(dispatch.pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    if request.state in (RequestState.PENDING,):
        request_transition(
            request_id=request.pk, to=RequestState.PLANNED, now=now, actor=PLANNER_NAME,
            reason=f"{len(plan.chosen)} cop{'y' if len(plan.chosen) == 1 else 'ies'} planned, "
            f"p(success)={plan.p_total:.3f} ({plan.outcome})",
        )
    hooks.notify(event="request.planned", request=request, copies=len(plan.chosen), p_total=plan.p_total)


def request_duration_hours(request: ObservingRequest) -> float:
    """Telescope hours one visit takes."""
    return request.duration_s() / 3600.0


__all__ = [
    "RequestInvalid",
    "facility_reliability",
    "network_plan",
    "open_requests",
    "request_submit",
]

# settings is imported for readers of this module who patch planning knobs in tests.
_ = settings
