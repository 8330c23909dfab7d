"""The simulated network's engine: clock, weather, downtime, request intake, scheduling and observing.

- Clock: simulated now = wall clock + an offset kept in the database
  (`sim_now`, `sim_clock_set`), so tests and drills run a night in seconds.
- Weather: per site, a two-state Markov chain over nights with the site's
  prior (mean clear and cloudy spell lengths), seeded by ``SIMNET_SEED`` and the
  site code, so the same seed gives the same weather on every run, in any
  order of questions; overrides force clear or cloudy over a span.
- Intake (`sim_request_group_submit`): the payload is checked as the LCO
  portal would (instrument, filters, constraints, windows) and the request is
  scheduled at the first time in its windows, not before simulated now, when
  the target is observable from the site for the whole observation (Sun below
  -12 deg, airmass and Moon-distance constraints; the visibility engine). A
  target never observable in its windows is refused with a clear error.
- Observing (`sim_tick`): each scheduled observation whose end has passed in
  simulated time is decided: downtime overlapping it fails it ("Downtime:
  ..."), a cloudy night at its site fails it ("Weather: ..."), otherwise it
  completes with one photometric point per exposure: the target's magnitude
  (its ``v_magnitude`` hint, else a fixed one derived from its name) observed
  with an error from the instrument's 60 s limit scaled to the exposure time
  and airmass (5-sigma at the limit, extinction 0.15 mag per airmass).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from observatories.models import Facility, Instrument, Site
from observatories.portal.payload import MAX_NAME, semester_bounds
from observatories.simnet.models import (
    SimClock,
    SimDowntime,
    SimObservation,
    SimRequest,
    SimRequestGroup,
    SimWeatherOverride,
)

# Fixed overheads of an observation, seconds (front padding and per-configuration set-up),
# about what the LCO 1-m network charges.
REQUEST_OVERHEAD_S = 30.0
CONFIGURATION_OVERHEAD_S = 60.0
EXTINCTION_MAG_PER_AIRMASS = 0.15
SYSTEMATIC_ERROR_MAG = 0.01
SUN_MAX_ALT_DEG = -12.0
NEVER_VISIBLE = (
    "According to the constraints of the request, the target will not be visible within the time window. Check "
    "that the target is in the nighttime sky. Consider modifying the time window or loosening the airmass or lunar "
    "separation constraints. If the target is non sidereal, double check that the provided elements are correct."
)
_WEATHER_EPOCH = date(2000, 1, 1)
MAX_WINDOW = timedelta(days=366)
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# Visibility is searched in chunks of this length, so a long window costs only until the first chance.
_SEARCH_CHUNK = timedelta(days=3)
_WEATHER_NIGHTS = 40_000  # 2000 to 2109
_VALID_TYPES = {"EXPOSE", "SPECTRUM", "REPEAT_EXPOSE", "LAMP_FLAT", "ARC"}
_VALID_OBSERVATION_TYPES = {"NORMAL", "RAPID_RESPONSE", "TIME_CRITICAL"}


class SimValidationError(Exception):
    """The payload is not acceptable; ``errors`` is a DRF-style error body (field -> messages)."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(str(errors))
        self.errors = errors


# -- clock ------------------------------------------------------------------------------------


def sim_now() -> datetime:
    """Simulated now (UTC): the wall clock plus the stored offset; a drill's own time while it calls."""
    from tomsite import sandbox

    box = sandbox.current()
    if box is not None and box.now is not None:
        return box.now
    offset = SimClock.objects.filter(pk=1).values_list("offset_s", flat=True).first() or 0.0
    return timezone.now() + timedelta(seconds=offset)


def sim_clock_set(*, now: datetime) -> datetime:
    """Set simulated now to ``now`` (aware); it then runs on at wall-clock speed. Returns it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    offset = (now - timezone.now()).total_seconds()
    SimClock.objects.update_or_create(pk=1, defaults={"offset_s": offset})
    return now


# -- weather ----------------------------------------------------------------------------------


def night_of(*, site: Site, at: datetime) -> date:
    """The date of the evening that begins the night containing ``at`` at ``site`` (local mean solar time)."""
    local = at.astimezone(UTC) + timedelta(hours=site.longitude_deg / 15.0) - timedelta(hours=12)
    return local.date()


@functools.lru_cache(maxsize=256)
def _weather_chain(seed: int, code: str, clear_spell: float, cloudy_spell: float) -> np.ndarray:
    """Clear (True) or cloudy for every night from 2000-01-01 on: a two-state Markov chain."""
    rng = np.random.default_rng([seed, zlib.crc32(code.encode())])
    draws = rng.random(_WEATHER_NIGHTS)
    p_stay_clear = 1.0 - 1.0 / clear_spell
    p_stay_cloudy = 1.0 - 1.0 / cloudy_spell
    states = np.empty(_WEATHER_NIGHTS, dtype=bool)
    state = bool(draws[0] < clear_spell / (clear_spell + cloudy_spell))
    states[0] = state
    for n in range(1, _WEATHER_NIGHTS):
        state = bool(draws[n] < p_stay_clear) if state else bool(draws[n] >= p_stay_cloudy)
        states[n] = state
    return states


def weather_prior_clear(*, site: Site, night: date, seed: int | None = None) -> bool:
    """Whether the site's weather chain makes ``night`` clear (no overrides)."""
    seed = settings.SIMNET_SEED if seed is None else seed
    chain = _weather_chain(seed, site.code, max(site.clear_spell_nights, 1.0), max(site.cloudy_spell_nights, 1.0))
    index = (night - _WEATHER_EPOCH).days % _WEATHER_NIGHTS
    return bool(chain[index])


@dataclass(frozen=True)
class SiteWeather:
    """A site's weather at an instant: clear or cloudy, why, and since when (when known)."""

    state: str
    reason: str
    since: datetime | None


def site_weather_at(*, site: Site, at: datetime) -> SiteWeather:
    """The weather at ``site`` at ``at``: the latest override covering it, else the site's chain."""
    override = SimWeatherOverride.objects.filter(site=site, start__lte=at, end__gt=at).first()
    if override is not None:
        return SiteWeather(state=override.state, reason=f"forced {override.state} until {override.end:%Y-%m-%d %H:%M} UTC", since=override.start)
    night = night_of(site=site, at=at)
    clear = weather_prior_clear(site=site, night=night)
    state = "clear" if clear else "cloudy"
    return SiteWeather(state=state, reason=f"{state} night {night.isoformat()} (weather prior)", since=None)


def sim_weather_set(*, site: Site, state: str, hours: float = 24.0, now: datetime | None = None) -> SimWeatherOverride | None:
    """Force ``site`` clear or cloudy from simulated now for ``hours``; ``state='prior'`` ends all overrides.

    Returns the override made (None for 'prior'). Raises ValueError for an unknown state or hours <= 0.
    """
    now = now or sim_now()
    if state == "prior":
        SimWeatherOverride.objects.filter(site=site, end__gt=now).update(end=now)
        return None
    if state not in SimWeatherOverride.State.values:
        raise ValueError(f"state must be clear, cloudy or prior, not {state!r}")
    if not hours > 0:
        raise ValueError("hours must be positive")
    return SimWeatherOverride.objects.create(site=site, state=state, start=now, end=now + timedelta(hours=hours))


# -- downtime ---------------------------------------------------------------------------------


def downtime_overlapping(*, facility: Facility, start: datetime, end: datetime) -> SimDowntime | None:
    """The downtime of ``facility`` overlapping [start, end], if any."""
    from django.db.models import Q

    return (
        SimDowntime.objects.filter(facility=facility, start__lte=end)
        .filter(Q(end__isnull=True) | Q(end__gt=start))
        .first()
    )


def sim_downtime_inject(
    *, facility: Facility, reason: str, hours: float | None = None, now: datetime | None = None
) -> SimDowntime:
    """Take ``facility`` out of service from simulated now, for ``hours`` or until cleared."""
    now = now or sim_now()
    if hours is not None and not hours > 0:
        raise ValueError("hours must be positive")
    end = now + timedelta(hours=hours) if hours is not None else None
    return SimDowntime.objects.create(facility=facility, reason=reason or "injected downtime", start=now, end=end)


def sim_downtime_clear(*, facility: Facility, now: datetime | None = None) -> int:
    """End every downtime of ``facility`` that is open at simulated now; return how many."""
    from django.db.models import Q

    now = now or sim_now()
    return SimDowntime.objects.filter(facility=facility).filter(Q(end__isnull=True) | Q(end__gt=now)).update(end=now)


# -- intake -----------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


@dataclass
class _Checked:
    """A validated request (internal)."""

    instrument: Instrument
    location_facilities: list[Facility]
    configurations: list[dict[str, Any]]
    windows: list[tuple[datetime, datetime]]
    location: dict[str, Any]
    ra: float
    dec: float
    max_airmass: float
    min_lunar_distance: float
    duration_s: float
    acceptability_threshold: float


def _instruments_at(location: Any) -> Any:
    """The simulated network's instruments (enabled facilities) within a request's location."""
    qs = Instrument.objects.select_related("facility__site").filter(facility__enabled=True, facility__simulated=True)
    where = location if isinstance(location, dict) else {}
    if where.get("site"):
        qs = qs.filter(facility__site__code=where["site"])
    if where.get("telescope_class"):
        qs = qs.filter(facility__telescope_class=where["telescope_class"])
    if where.get("enclosure"):
        qs = qs.filter(facility__enclosure=where["enclosure"])
    if where.get("telescope"):
        qs = qs.filter(facility__telescope=where["telescope"])
    return qs.order_by("facility__code", "code")


def _instrument_types_at(location: Any) -> list[str]:
    return sorted({i.portal_instrument_type for i in _instruments_at(location)})


def _instrument_for(instrument_type: Any, location: Any) -> Instrument | None:
    """An instrument of the portal type within the location (the first; every one of the type is alike)."""
    if not isinstance(instrument_type, str) or not instrument_type:
        return None
    for instrument in _instruments_at(location):
        if instrument.portal_instrument_type == instrument_type:
            return instrument
    return None


def _telescopes_for(instrument_type: str, location: Any) -> list[Facility]:
    """Every simulated telescope (facility) carrying the type within the location: the scheduler's choices."""
    return [i.facility for i in _instruments_at(location) if i.portal_instrument_type == instrument_type]


def _check_request(request: Any, errors: dict[str, Any]) -> _Checked | None:
    """Check one request of a payload, writing field errors into ``errors``; the checked request or None."""
    if not isinstance(request, dict):
        errors["non_field_errors"] = ["a request must be an object"]
        return None
    configurations = request.get("configurations")
    if not isinstance(configurations, list) or not configurations:
        errors["configurations"] = ["at least one configuration is required"]
        return None
    instrument: Instrument | None = None
    duration = REQUEST_OVERHEAD_S
    ra = dec = 0.0
    max_airmass, min_lunar = 1.6, 30.0
    config_errors: list[dict[str, Any]] = []
    for config in configurations:
        err: dict[str, Any] = {}
        config_errors.append(err)
        if not isinstance(config, dict):
            err["non_field_errors"] = ["a configuration must be an object"]
            continue
        if str(config.get("type", "EXPOSE")) not in _VALID_TYPES:
            err["type"] = [f"unknown configuration type {config.get('type')!r}"]
        code = config.get("instrument_type")
        this = _instrument_for(code, request.get("location"))
        if this is None:
            known = _instrument_types_at({})
            if code not in known:
                err["instrument_type"] = [f"Invalid instrument type {code}. Valid instruments may include: {', '.join(known)}"]
            else:
                where: dict[str, Any] = request["location"] if isinstance(request.get("location"), dict) else {}
                err["non_field_errors"] = [
                    f"Invalid instrument type '{code}' at site={where.get('site') or 'Any'}, "
                    f"enc={where.get('enclosure') or 'Any'}, tel={where.get('telescope') or 'Any'}. \n"
                    f"Valid instruments include: {', '.join(_instrument_types_at(where))}, ."
                ]
            continue
        if instrument is not None and this.portal_instrument_type != instrument.portal_instrument_type:
            err["instrument_type"] = ["all configurations of a request must use one instrument type"]
            continue
        instrument = this
        acquisition: dict[str, Any] = config["acquisition_config"] if isinstance(config.get("acquisition_config"), dict) else {}
        acq_mode = str(acquisition.get("mode", "OFF"))
        allowed_acq = {"WCS", "BRIGHTEST"} if this.optical_element_group == "slit" else {"OFF"}
        if acq_mode not in allowed_acq:
            err.setdefault("non_field_errors", []).append(
                f"Acquisition mode {acq_mode} is not available for instrument type {this.portal_instrument_type}"
            )
        target = config.get("target")
        if not isinstance(target, dict):
            err["target"] = {"non_field_errors": ["No data provided"]}
        else:
            target_err: dict[str, list[str]] = {}
            name = target.get("name")
            if not isinstance(name, str) or not name.strip():
                target_err["name"] = ["This field is required."]
            elif len(name) > MAX_NAME:
                target_err["name"] = [f"Ensure this field has no more than {MAX_NAME} characters."]
            try:
                ra, dec = _number(target.get("ra")), _number(target.get("dec"))
                if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
                    raise ValueError
            except (TypeError, ValueError):
                target_err["ra"] = ["ra must be in [0, 360) and dec in [-90, 90] degrees"]
            if target.get("type", "ICRS") != "ICRS":
                target_err["type"] = ["only ICRS (sidereal) targets are supported"]
            if target_err:
                err["target"] = target_err
        constraints = config.get("constraints") or {}
        try:
            max_airmass = _number(constraints.get("max_airmass", 1.6))
            min_lunar = _number(constraints.get("min_lunar_distance", 30.0))
            if not (1.0 <= max_airmass <= 25.0) or not (0.0 <= min_lunar <= 180.0):
                raise ValueError
        except (TypeError, ValueError, AttributeError):
            err["constraints"] = ["max_airmass must be in [1, 25] and min_lunar_distance in [0, 180]"]
        ics = config.get("instrument_configs")
        if not isinstance(ics, list) or not ics:
            err["instrument_configs"] = ["at least one instrument configuration is required"]
            continue
        duration += CONFIGURATION_OVERHEAD_S
        ic_errors: list[dict[str, Any]] = []
        for ic in ics:
            ic_err: dict[str, Any] = {}
            ic_errors.append(ic_err)
            try:
                exposure_time = _number(ic.get("exposure_time"))
                count = int(ic.get("exposure_count", 1))
                if not (0.0 < exposure_time <= 7200.0 and 1 <= count <= 1000):
                    raise ValueError
            except (TypeError, ValueError, AttributeError, OverflowError):
                ic_err["exposure_time"] = ["exposure_time must be in (0, 7200] s and exposure_count in [1, 1000]"]
                continue
            # As the portal: configuration-level messages (non_field_errors of the configuration).
            problems = err.setdefault("non_field_errors", [])
            mode = ic.get("mode", "")
            if mode and this.readout_modes and mode.lower() not in {m.lower() for m in this.readout_modes}:
                problems.append(f"Readout mode {mode} is not available for instrument type {this.portal_instrument_type}")
            elements = ic.get("optical_elements") if isinstance(ic.get("optical_elements"), dict) else {}
            group = this.optical_element_group or "filter"
            for key in sorted(set(elements) - {group} - set(this.fixed_optical_elements or {})):
                problems.append(
                    f"optical_element of type {key} is not available on {this.portal_instrument_type} instruments"
                )
            element = elements.get(group)
            if element is None:
                problems.append(f"Must set optical element of type {group} for instrument type {this.portal_instrument_type}")
            elif this.filters and str(element).lower() not in {f.lower() for f in this.filters}:
                problems.append(f"optical element {element} of type {group} is not available")
            if not problems:
                del err["non_field_errors"]
            duration += (exposure_time + this.readout_s) * count
        if any(ic_errors):
            err["instrument_configs"] = ic_errors
    if any(config_errors):
        errors["configurations"] = config_errors
    windows: list[tuple[datetime, datetime]] = []
    raw_windows = request.get("windows")
    if not isinstance(raw_windows, list) or not raw_windows:
        errors["windows"] = ["at least one window is required"]
    else:
        for window in raw_windows:
            try:
                start, end = _parse_time(window["start"]), _parse_time(window["end"])
            except (KeyError, TypeError, ValueError):
                errors["windows"] = ["each window needs ISO 8601 start and end times"]
                break
            if end <= start:
                errors["windows"] = ["a window must end after it starts"]
                break
            if end - start > MAX_WINDOW:
                errors["windows"] = [f"a window may be at most {MAX_WINDOW.days} days long"]
                break
            if not (_EARLIEST <= start and end <= _LATEST):
                errors["windows"] = ["windows must lie between 2000 and 2100"]
                break
            if semester_bounds(start) != semester_bounds(end - timedelta(microseconds=1)):
                errors["windows"] = [{"non_field_errors": ["The observation window does not fit within any defined semester."]}]
                break
            windows.append((start, end))
    location: dict[str, Any] = request["location"] if isinstance(request.get("location"), dict) else {}
    sites = set(Facility.objects.filter(simulated=True, enabled=True).values_list("site__code", flat=True))
    if location.get("site") and location["site"] not in sites:
        errors["location"] = {"site": [f'"{location["site"]}" is not a valid choice.']}
    try:
        threshold = _number(request.get("acceptability_threshold", 90.0))
        if not 0.0 <= threshold <= 100.0:
            raise ValueError
    except (TypeError, ValueError):
        errors["acceptability_threshold"] = ["acceptability_threshold must be in [0, 100]"]
    if errors or instrument is None:
        return None
    return _Checked(
        instrument=instrument,
        location_facilities=_telescopes_for(instrument.portal_instrument_type, location),
        configurations=configurations,
        windows=windows,
        location=location if isinstance(location, dict) else {},
        ra=ra,
        dec=dec,
        max_airmass=max_airmass,
        min_lunar_distance=min_lunar,
        duration_s=duration,
        acceptability_threshold=threshold,
    )


def first_observable_slot(
    *, site: Site, ra: float, dec: float, windows: list[tuple[datetime, datetime]], not_before: datetime,
    duration_s: float, max_airmass: float, min_lunar_distance: float,
    busy: list[tuple[datetime, datetime]] | None = None,
) -> tuple[datetime, datetime] | None:
    """The first [start, start + duration] inside a window, not before ``not_before``, when the target is observable
    and the slot overlaps none of the ``busy`` spans (the telescope's other observations)."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time

    from observatories.visibility import Constraints, observable_windows

    location = EarthLocation.from_geodetic(site.longitude_deg * u.deg, site.latitude_deg * u.deg, site.elevation_m * u.m)
    target = SkyCoord([ra] * u.deg, [dec] * u.deg)
    constraints = Constraints(
        max_airmass=max_airmass, min_moon_separation_deg=min_lunar_distance, sun_max_alt_deg=SUN_MAX_ALT_DEG
    )
    need = timedelta(seconds=duration_s)
    taken = sorted(busy or [])
    for start, end in sorted(windows):
        chunk_start = max(start, not_before)
        while end - chunk_start >= need:
            # Chunks overlap by the observation's length, so a slot across a chunk edge is not missed.
            chunk_end = min(end, chunk_start + _SEARCH_CHUNK + need)
            found = observable_windows(
                targets=target, sites=location, start=Time(chunk_start), end=Time(chunk_end),
                constraints=constraints, step=5 * u.min,  # the planner's resolution, so its chances are found here
            )
            for begin, finish in found.for_pair(target=0, site=0):
                slot_start = begin.to_datetime(timezone=UTC).replace(microsecond=0) + timedelta(seconds=1)
                last = finish.to_datetime(timezone=UTC)
                # Walk past the telescope's other observations, in time order.
                for busy_start, busy_end in taken:
                    if busy_end <= slot_start or busy_start >= slot_start + need:
                        continue
                    slot_start = max(slot_start, busy_end)
                if last - slot_start >= need:
                    return slot_start, slot_start + need
            chunk_start += _SEARCH_CHUNK
    return None


def sim_proposals() -> set[str]:
    """The proposals the simulated portal knows: ``SIMNET_PROPOSALS`` and the facilities' default proposals."""
    known = set(getattr(settings, "SIMNET_PROPOSALS", ()))
    known.update(p for p in Facility.objects.filter(simulated=True).values_list("default_proposal", flat=True) if p)
    return known


@dataclass(frozen=True)
class _Slot:
    """When and on which telescope the simulated scheduler puts an attempt."""

    facility: Facility
    start: datetime
    end: datetime


def next_attempt(*, checked: _Checked, not_before: datetime, exclude_request: int | None = None) -> _Slot | None:
    """The earliest slot on any telescope of the location when the target is observable and the telescope is free.

    A telescope observes one thing at a time: a slot overlapping another pending attempt on it moves past that one.
    """
    best: _Slot | None = None
    one_site = len({f.site_id for f in checked.location_facilities}) == 1
    for facility in checked.location_facilities:
        busy = list(
            SimObservation.objects.filter(facility=facility, state="PENDING", end__gt=not_before)
            .exclude(request_id=exclude_request)
            .order_by("start")
            .values_list("start", "end")
        )
        found = first_observable_slot(
            site=facility.site, ra=checked.ra, dec=checked.dec, windows=checked.windows, not_before=not_before,
            duration_s=checked.duration_s, max_airmass=checked.max_airmass,
            min_lunar_distance=checked.min_lunar_distance, busy=busy,
        )
        if found is not None and (best is None or found[0] < best.start):
            best = _Slot(facility=facility, start=found[0], end=found[1])
        if best is not None and not busy and one_site:
            break  # a free telescope at the one site: none of its site-mates can start earlier
    return best


def sim_request_group_validate(*, payload: Any, now: datetime | None = None) -> tuple[dict[str, Any], list[tuple[_Checked, _Slot]]]:
    """Check a payload as the portal would; return (errors, [(checked request, scheduled slot)])."""
    now = now or sim_now()
    errors: dict[str, Any] = {}
    if not isinstance(payload, dict):
        return {"non_field_errors": ["the request group must be a JSON object"]}, []
    name = payload.get("name")
    if name is None:
        errors["name"] = ["This field is required."]
    elif not isinstance(name, str) or not name.strip():
        errors["name"] = ["Please provide a name."]
    elif len(name) > MAX_NAME:
        errors["name"] = [f"Ensure this field has no more than {MAX_NAME} characters."]
    proposal = payload.get("proposal")
    if proposal is None:
        errors["proposal"] = ["This field is required."]
    elif str(proposal) not in sim_proposals():
        errors["proposal"] = [f'Invalid pk "{proposal}" - object does not exist.']
    try:
        ipp = _number(payload.get("ipp_value", 1.0))
        if not 0.5 <= ipp <= 2.0:
            raise ValueError
    except (TypeError, ValueError):
        errors["non_field_errors"] = ["requestgroups ipp_value must be >= 0.5, <= 2.0"]
    if payload.get("operator", "SINGLE") != "SINGLE":
        errors["operator"] = ["only the SINGLE operator is supported"]
    if str(payload.get("observation_type", "NORMAL")) not in _VALID_OBSERVATION_TYPES:
        errors["observation_type"] = [f"observation_type must be one of {', '.join(sorted(_VALID_OBSERVATION_TYPES))}"]
    raw_requests = payload.get("requests")
    if not isinstance(raw_requests, list) or len(raw_requests) != 1:
        errors["requests"] = ["a SINGLE request group has exactly one request"]
        return errors, []
    request_errors: dict[str, Any] = {}
    checked = _check_request(raw_requests[0], request_errors)
    scheduled: list[tuple[_Checked, _Slot]] = []
    if checked is not None:
        if all(end <= now for _, end in checked.windows):
            request_errors["windows"] = [{"end": ["Window end time must be in the future"]}]
        else:
            slot = next_attempt(checked=checked, not_before=now)
            if slot is None:
                request_errors["non_field_errors"] = [NEVER_VISIBLE]
            else:
                scheduled.append((checked, slot))
    if request_errors:
        errors["requests"] = [request_errors]
    return errors, scheduled


def sim_request_group_submit(*, payload: Any, now: datetime | None = None) -> SimRequestGroup:
    """Accept and schedule a request group; raise `SimValidationError` (nothing saved) if it is not acceptable."""
    now = now or sim_now()
    errors, scheduled = sim_request_group_validate(payload=payload, now=now)
    if errors:
        raise SimValidationError(errors)
    with transaction.atomic():
        group = SimRequestGroup.objects.create(
            name=payload.get("name", ""),
            proposal=str(payload.get("proposal", ""))[:100],
            ipp_value=float(payload.get("ipp_value", 1.0)),
            operator="SINGLE",
            observation_type=payload.get("observation_type", "NORMAL"),
            state="PENDING",
            created=now,
            modified=now,
        )
        for checked, slot in scheduled:
            request = SimRequest.objects.create(
                group=group,
                facility=slot.facility,
                instrument=checked.instrument,
                configurations=checked.configurations,
                windows=[{"start": s.isoformat(), "end": e.isoformat()} for s, e in checked.windows],
                location=checked.location,
                acceptability_threshold=checked.acceptability_threshold,
                duration_s=checked.duration_s,
                modified=now,
            )
            SimObservation.objects.create(request=request, facility=slot.facility, start=slot.start, end=slot.end, modified=now)
    return group


def sim_request_group_cancel(*, group_id: int, now: datetime | None = None) -> SimRequestGroup:
    """Cancel a PENDING group (its requests and scheduled observations).

    As LCO's portal: a cancelled group cancelled again is answered unchanged; any other ended group raises
    ValueError ("Cannot transition from request state COMPLETED to CANCELED ...", a 400).
    """
    now = now or sim_now()
    with transaction.atomic():
        group = SimRequestGroup.objects.select_for_update().get(pk=group_id)
        if group.state == "CANCELED":
            return group
        if group.state != "PENDING":
            first = group.requests.order_by("id").first()
            raise ValueError(f"Cannot transition from request state {group.state} to CANCELED for {first.pk if first else group.pk}")
        group.state, group.modified = "CANCELED", now
        group.save(update_fields=["state", "modified"])
        SimRequest.objects.filter(group=group, state="PENDING").update(state="CANCELED", modified=now)
        SimObservation.objects.filter(request__group=group, state="PENDING").update(state="CANCELED", modified=now)
    return group


# -- observing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TickResult:
    """What one tick did: simulated now, and how many observations completed or failed."""

    now: datetime
    completed: int
    failed: int


def target_base_mag(*, name: str, hint: Any) -> float:
    """The target's magnitude: its ``v_magnitude`` hint if it has one, else 14-18.5 fixed by its name."""
    try:
        if hint is not None:
            return float(hint)
    except (TypeError, ValueError):
        pass
    return 14.0 + 4.5 * (zlib.crc32(name.encode()) % 1000) / 999.0


def _photometry(*, observation: SimObservation, seed: int) -> list[dict[str, Any]]:
    """One point per exposure, with a realistic error (see the module docstring)."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time

    from observatories.visibility import compute_grid

    request = observation.request
    instrument = request.instrument
    site = observation.facility.site
    rng = np.random.default_rng([seed, observation.pk])
    exposures: list[tuple[datetime, str, float, dict[str, Any]]] = []
    moment = observation.start + timedelta(seconds=REQUEST_OVERHEAD_S)
    for config in request.configurations:
        moment += timedelta(seconds=CONFIGURATION_OVERHEAD_S)
        for ic in config.get("instrument_configs", []):
            band = (ic.get("optical_elements") or {}).get("filter") or "clear"
            for _ in range(int(ic.get("exposure_count", 1))):
                t = float(ic["exposure_time"])
                exposures.append((moment + timedelta(seconds=t / 2), band, t, config.get("target", {})))
                moment += timedelta(seconds=t + instrument.readout_s)
    if not exposures:
        return []
    target = exposures[0][3]
    location = EarthLocation.from_geodetic(site.longitude_deg * u.deg, site.latitude_deg * u.deg, site.elevation_m * u.m)
    grid = compute_grid(
        targets=SkyCoord([float(target["ra"])] * u.deg, [float(target["dec"])] * u.deg),
        sites=location,
        times=Time([e[0] for e in exposures]) if len(exposures) > 1 else Time([exposures[0][0]]),
    )
    airmass = np.minimum(grid.airmass[0, 0, :], 10.0)
    base = target_base_mag(name=str(target.get("name", "")), hint=(target.get("extra_params") or {}).get("v_magnitude"))
    points = []
    for (when, band, seconds, _), x in zip(exposures, airmass, strict=True):
        limit = instrument.limiting_mag_60s + 1.25 * math.log10(seconds / 60.0) - EXTINCTION_MAG_PER_AIRMASS * (x - 1.0)
        snr = 5.0 * 10 ** (-0.4 * (base - limit))
        err = math.hypot(1.0857 / snr, SYSTEMATIC_ERROR_MAG)
        points.append(
            {"time": when.isoformat(), "band": band, "mag": round(base + float(rng.normal(0.0, err)), 4), "mag_err": round(err, 4)}
        )
    return points


def _decide(observation: SimObservation, *, now: datetime, seed: int) -> str:
    """Observe or fail one due observation (row locked by the caller); return its new state.

    As LCO's portal: a failed attempt does not end its request, which stays PENDING and is tried again at the
    next free, observable slot in its windows (not before ``SIMNET_RETRY_DELAY_S`` after the failure), until
    ``SIMNET_FAILURE_LIMIT`` attempts have failed (FAILURE_LIMIT_REACHED) or no slot is left (the request
    expires when its last window closes). The failure's reason is in the configuration status only.
    """
    request = observation.request
    facility = observation.facility
    downtime = downtime_overlapping(facility=facility, start=observation.start, end=observation.end)
    weather = site_weather_at(site=facility.site, at=observation.start)
    if downtime is not None:
        observation.state, observation.fail_reason = "FAILED", f"Downtime: {facility.location_key}: {downtime.reason}"
    elif weather.state != "clear":
        observation.state = "FAILED"
        observation.fail_reason = f"Weather: not ok to open at {facility.site.code} ({weather.reason})"
    else:
        observation.state, observation.photometry = "COMPLETED", _photometry(observation=observation, seed=seed)
    observation.modified = now
    observation.save(update_fields=["state", "fail_reason", "photometry", "modified"])
    if observation.state == "COMPLETED":
        _request_end(request, state="COMPLETED", now=now)
        return observation.state
    failures = SimObservation.objects.filter(request=request, state="FAILED").count()
    limit = getattr(settings, "SIMNET_FAILURE_LIMIT", 0)  # 0: no limit (the portal's MAX_FAILURES_PER_REQUEST)
    if limit and failures >= limit:
        _request_end(request, state="FAILURE_LIMIT_REACHED", now=now)
        return observation.state
    errors: dict[str, Any] = {}
    checked = _check_request(
        {"configurations": request.configurations, "windows": request.windows, "location": request.location,
         "acceptability_threshold": request.acceptability_threshold},
        errors,
    )
    retry_at = observation.end + timedelta(seconds=getattr(settings, "SIMNET_RETRY_DELAY_S", 1800.0))
    slot = next_attempt(checked=checked, not_before=retry_at, exclude_request=request.pk) if checked else None
    if slot is not None:
        SimObservation.objects.create(request=request, facility=slot.facility, start=slot.start, end=slot.end, modified=now)
        SimRequest.objects.filter(pk=request.pk).update(modified=now)
    return observation.state


def _request_end(request: SimRequest, *, state: str, now: datetime) -> None:
    SimRequest.objects.filter(pk=request.pk).update(state=state, modified=now)
    SimObservation.objects.filter(request=request, state="PENDING").update(state="CANCELED", modified=now)
    SimRequestGroup.objects.filter(pk=request.group_id).update(state=state, modified=now)


def _expire_windows(*, now: datetime) -> int:
    """PENDING requests whose every window has closed, with no attempt left pending, become WINDOW_EXPIRED."""
    expired = 0
    for request in SimRequest.objects.filter(state="PENDING").exclude(observations__state="PENDING"):
        ends = [_parse_time(w["end"]) for w in request.windows]
        if ends and max(ends) <= now:
            _request_end(request, state="WINDOW_EXPIRED", now=now)
            expired += 1
    return expired


def sim_tick(*, now: datetime | None = None) -> TickResult:
    """Advance simulated time to ``now`` (if given) and decide every observation that has ended by then.

    Idempotent and safe to run concurrently (rows are locked, skip-locked):
    each observation is decided once. Returns what it did.
    """
    if now is not None:
        sim_clock_set(now=now)
    now = now or sim_now()
    seed = settings.SIMNET_SEED
    completed = failed = 0
    due = list(
        SimObservation.objects.filter(state="PENDING", end__lte=now, request__state="PENDING")
        .order_by("end")
        .values_list("pk", flat=True)
    )
    for pk in due:
        with transaction.atomic():
            observation = (
                SimObservation.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("request__instrument", "facility__site")
                .filter(pk=pk, state="PENDING")
                .first()
            )
            if observation is None:
                continue
            if _decide(observation, now=now, seed=seed) == "COMPLETED":
                completed += 1
            else:
                failed += 1
    _expire_windows(now=now)
    return TickResult(now=now, completed=completed, failed=failed)


@dataclass(frozen=True)
class TelescopeStateNow:
    """A simulated telescope's state now, as the portal's telescope_states reports it."""

    event_type: str
    reason: str
    since: datetime


def telescope_state_now(*, facility: Facility, now: datetime) -> TelescopeStateNow:
    """As LCO's telescope states: SEQUENCER_DISABLED during downtime, NOT_OK_TO_OPEN when cloudy, else AVAILABLE."""
    downtime = downtime_overlapping(facility=facility, start=now, end=now)
    if downtime is not None:
        return TelescopeStateNow(event_type="SEQUENCER_DISABLED", reason=f"Downtime: {downtime.reason}", since=downtime.start)
    weather = site_weather_at(site=facility.site, at=now)
    if weather.state != "clear":
        return TelescopeStateNow(event_type="NOT_OK_TO_OPEN", reason=f"Weather: {weather.reason}", since=weather.since or now)
    return TelescopeStateNow(event_type="AVAILABLE", reason="Available for scheduling", since=weather.since or now)
