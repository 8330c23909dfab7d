"""Drill scenarios: what happens in a rehearsal, as data, and the synthetic alerts it makes.

A scenario is a JSON document (validated by :func:`scenario_validate`)::

    {"duration_hours": 48, "step_minutes": 15, "sim_start": "2027-06-10T00:00:00Z",
     "events": [
        {"kind": "replay", "name": "OB03235", "dataset": "OB03235-OGLE", "peak_hours": 30, "time_scale": 10},
        {"kind": "microlensing", "name": "PSPL-1", "ra": 270.31813, "dec": -28.89500,
         "peak_hours": 30, "t_e_days": 61.5, "u0": 0.133, "base_mag": 19.0, "band": "i",
         "cadence_hours": 3, "start_hours": 0},
        {"kind": "fast_transient", "name": "FT-1", "ra": 64.0, "dec": -20.0, "start_hours": 2,
         "peak_mag": 17.5, "rise_hours": 6, "fade_mag_per_day": 2.5, "band": "r", "cadence_hours": 1}],
     "faults": [
        {"kind": "clouds", "site": "lsc", "at_hours": 4, "hours": 12},
        {"kind": "downtime", "facility": "coj-1m0-a", "at_hours": 1, "hours": 24, "reason": "dome fault"},
        {"kind": "slack_down", "at_hours": 0, "hours": 3}]}

Events become alerts (broker ``drill``), one every ``cadence_hours`` from ``start_hours``
while the event is brighter than ``limit_mag`` (default 21.5), each with the event's
earlier points as history, so filters on rise rate work as on real alerts. Magnitudes get
Gaussian noise from the drill's seed: the same seed makes the same alerts.

- ``microlensing``: a point-source point-lens light curve (Paczyński 1986) with the given
  Einstein time ``t_e_days``, impact parameter ``u0`` and peak time ``peak_hours``; the
  default is OGLE-2003-BLG-235's published single-lens fit (t_E = 61.5 d, u0 = 0.133:
  Bond et al. 2004, ApJ 606, L155) at its real position, so a bulge-season ``sim_start``
  makes it observable.
- ``replay``: a real light curve replayed alert by alert, each published point at its own
  time shifted so the event's peak falls at ``peak_hours`` and, with ``time_scale`` (real days
  per simulated day, default 1), compressed. ``OB03235-OGLE`` is OGLE's I-band photometry of
  OGLE-2003-BLG-235 (Bond et al. 2004; NASA Exoplanet Archive; ``drills/data``), at its real
  position, peak JD 2452848.06. The points are the real ones (no noise is added).
- ``fast_transient``: rises linearly in magnitude by ``rise_mag`` over ``rise_hours``
  to ``peak_mag``, then fades at ``fade_mag_per_day`` (a kilonova-like event fades by
  ~2.5 mag in two nights).

Faults act at ``at_hours`` for ``hours``: ``clouds`` forces a site's simulated weather cloudy;
``downtime`` takes a simulated facility out of service; ``slack_down`` makes every Slack
delivery fail as an unreachable endpoint would (the outbox retries it afterwards).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

MAX_HOURS = 24 * 14
MAX_EVENTS = 50
MAX_FAULTS = 50
EVENT_KINDS = ("microlensing", "replay", "fast_transient")
FAULT_KINDS = ("clouds", "downtime", "slack_down")
DRILL_BROKER = "drill"

# OGLE-2003-BLG-235 (Bond et al. 2004): position from the OGLE EWS, single-lens fit parameters.
OB03235 = {"ra": 270.318125, "dec": -28.895000, "t_e_days": 61.5, "u0": 0.133}


class ScenarioInvalid(ValueError):
    """A scenario that cannot be run; the message names the field."""


@dataclass(frozen=True)
class Fault:
    kind: str
    at: datetime
    end: datetime
    site: str = ""
    facility: str = ""
    reason: str = ""

    def active(self, now: datetime) -> bool:
        return self.at <= now < self.end


def _number(value: Any, where: str, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioInvalid(f"{where}: must be a finite number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ScenarioInvalid(f"{where}: must be between {low} and {high}")
    return float(value)


def _text(value: Any, where: str, *, max_length: int = 64) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > max_length:
        raise ScenarioInvalid(f"{where}: must be a non-empty text of at most {max_length} characters")
    return value.strip()


def _time(value: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioInvalid(f"{where}: not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise ScenarioInvalid(f"{where}: give a time zone (e.g. Z)")
    return moment.astimezone(UTC)


_EVENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "microlensing": {"start_hours": 0.0, "cadence_hours": 3.0, "peak_hours": 30.0, "base_mag": 19.0, "band": "i",
                     "limit_mag": 21.5, **{k: OB03235[k] for k in ("ra", "dec", "t_e_days", "u0")}},
    "replay": {"dataset": "OB03235-OGLE", "peak_hours": 24.0, "time_scale": 1.0, "band": "I"},
    "fast_transient": {"ra": None, "dec": None, "start_hours": 1.0, "cadence_hours": 1.0, "peak_mag": 17.5, "rise_mag": 2.5, "rise_hours": 6.0,
                       "fade_mag_per_day": 2.5, "band": "r", "limit_mag": 21.5},
}
_EVENT_NUMBERS = {
    "ra": (0.0, 360.0), "dec": (-90.0, 90.0), "start_hours": (0.0, MAX_HOURS), "cadence_hours": (0.05, 48.0),
    "peak_hours": (-24.0 * 365, 24.0 * 365), "t_e_days": (0.1, 1000.0), "u0": (1e-4, 3.0), "base_mag": (10.0, 25.0),
    "peak_mag": (8.0, 25.0), "rise_mag": (0.0, 10.0), "rise_hours": (0.1, 240.0), "fade_mag_per_day": (0.0, 20.0),
    "limit_mag": (10.0, 28.0), "time_scale": (0.01, 1000.0),
}


def scenario_validate(document: Any, *, default_start: datetime) -> dict[str, Any]:
    """Check and complete a scenario (see module doc); raises ScenarioInvalid naming the field."""
    if not isinstance(document, dict):
        raise ScenarioInvalid("scenario: must be an object")
    unknown = set(document) - {"duration_hours", "step_minutes", "sim_start", "events", "faults"}
    if unknown:
        raise ScenarioInvalid(f"scenario: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    duration = _number(document.get("duration_hours", 48), "duration_hours", low=1, high=MAX_HOURS)
    step = _number(document.get("step_minutes", 15), "step_minutes", low=1, high=240)
    start = _time(document["sim_start"], "sim_start") if document.get("sim_start") else default_start
    events_in = document.get("events", [])
    if not isinstance(events_in, list) or not events_in or len(events_in) > MAX_EVENTS:
        raise ScenarioInvalid(f"events: must be a list of 1 to {MAX_EVENTS} events")
    events: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, raw in enumerate(events_in):
        where = f"events[{i}]"
        if not isinstance(raw, dict):
            raise ScenarioInvalid(f"{where}: must be an object")
        kind = raw.get("kind")
        if kind not in EVENT_KINDS:
            raise ScenarioInvalid(f"{where}.kind: must be one of {', '.join(EVENT_KINDS)}")
        allowed = {"kind", "name", "classifications", *_EVENT_DEFAULTS[kind]}
        extra = set(raw) - allowed
        if extra:
            raise ScenarioInvalid(f"{where}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
        event: dict[str, Any] = {"kind": kind, "name": _text(raw.get("name", f"{kind}-{i + 1}"), f"{where}.name", max_length=40)}
        if event["name"] in names:
            raise ScenarioInvalid(f"{where}.name: {event['name']!r} is used twice")
        names.add(event["name"])
        for key, default in _EVENT_DEFAULTS[kind].items():
            value = raw.get(key, default)
            if value is None:
                raise ScenarioInvalid(f"{where}.{key}: required")
            if key == "band":
                event[key] = _text(value, f"{where}.band", max_length=16)
            elif key == "dataset":
                if value not in DATASETS:
                    raise ScenarioInvalid(f"{where}.dataset: one of {', '.join(DATASETS)}")
                event[key] = value
            else:
                low, high = _EVENT_NUMBERS[key]
                event[key] = _number(value, f"{where}.{key}", low=low, high=high)
        classes = raw.get("classifications", [])
        if not isinstance(classes, list) or len(classes) > 10:
            raise ScenarioInvalid(f"{where}.classifications: must be a list of at most 10")
        event["classifications"] = [
            {"classifier": _text(c.get("classifier") if isinstance(c, dict) else None, f"{where}.classifications[{j}].classifier"),
             "class": _text(c.get("class"), f"{where}.classifications[{j}].class"),
             "score": _number(c.get("score"), f"{where}.classifications[{j}].score", low=0.0, high=1.0)}
            for j, c in enumerate(classes)
        ]
        events.append(event)
    faults_in = document.get("faults", [])
    if not isinstance(faults_in, list) or len(faults_in) > MAX_FAULTS:
        raise ScenarioInvalid(f"faults: must be a list of at most {MAX_FAULTS}")
    faults: list[dict[str, Any]] = []
    for i, raw in enumerate(faults_in):
        where = f"faults[{i}]"
        if not isinstance(raw, dict):
            raise ScenarioInvalid(f"{where}: must be an object")
        kind = raw.get("kind")
        if kind not in FAULT_KINDS:
            raise ScenarioInvalid(f"{where}.kind: must be one of {', '.join(FAULT_KINDS)}")
        extra = set(raw) - {"kind", "at_hours", "hours", "site", "facility", "reason"}
        if extra:
            raise ScenarioInvalid(f"{where}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
        fault = {"kind": kind, "at_hours": _number(raw.get("at_hours", 0), f"{where}.at_hours", low=0, high=duration),
                 "hours": _number(raw.get("hours", 6), f"{where}.hours", low=0.01, high=MAX_HOURS)}
        if kind == "clouds":
            fault["site"] = _text(raw.get("site"), f"{where}.site")
        if kind == "downtime":
            fault["facility"] = _text(raw.get("facility"), f"{where}.facility")
            fault["reason"] = str(raw.get("reason", "injected downtime"))[:200]
        faults.append(fault)
    return {"duration_hours": duration, "step_minutes": step, "sim_start": start.isoformat(), "events": events,
            "faults": faults}


def scenario_faults(scenario: dict[str, Any]) -> list[Fault]:
    start = _time(scenario["sim_start"], "sim_start")
    return [
        Fault(kind=f["kind"], at=start + timedelta(hours=f["at_hours"]),
              end=start + timedelta(hours=f["at_hours"] + f["hours"]), site=f.get("site", ""),
              facility=f.get("facility", ""), reason=f.get("reason", ""))
        for f in scenario["faults"]
    ]


def _pspl_mag(event: dict[str, Any], hours: np.ndarray) -> np.ndarray:
    tau = (hours - event["peak_hours"]) / (24.0 * event["t_e_days"])
    u = np.sqrt(event["u0"] ** 2 + tau**2)
    magnification = (u**2 + 2.0) / (u * np.sqrt(u**2 + 4.0))
    return event["base_mag"] - 2.5 * np.log10(magnification)


def _transient_mag(event: dict[str, Any], hours: np.ndarray) -> np.ndarray:
    since = hours - event["start_hours"]
    rising = event["peak_mag"] + event["rise_mag"] * (1.0 - np.clip(since / event["rise_hours"], 0.0, 1.0))
    fading = event["peak_mag"] + event["fade_mag_per_day"] * np.clip(since - event["rise_hours"], 0.0, None) / 24.0
    return np.where(since <= event["rise_hours"], rising, fading)


DATASETS: dict[str, dict[str, Any]] = {
    "OB03235-OGLE": {"file": "OB03235_OGLE.csv", "peak_jd": 2452848.06, **{k: OB03235[k] for k in ("ra", "dec")}},
}


@functools.lru_cache(maxsize=4)
def dataset_points(name: str) -> np.ndarray:
    """A shipped light curve as an (n, 3) array of JD, mag, error."""
    path = Path(__file__).parent / "data" / DATASETS[name]["file"]
    return np.loadtxt(path, delimiter=",", comments="#", skiprows=4, ndmin=2)


def _replay(event: dict[str, Any], duration: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hours into the drill, mags and errors of the dataset's points that fall in the drill."""
    data = dataset_points(event["dataset"])
    hours = event["peak_hours"] + (data[:, 0] - DATASETS[event["dataset"]]["peak_jd"]) * 24.0 / event["time_scale"]
    inside = (hours >= 0.0) & (hours <= duration)
    return hours[inside], data[inside, 1], data[inside, 2]


def _mag_err(mag: np.ndarray) -> np.ndarray:
    """A survey-like error model: 0.01 mag floor, photon noise growing to ~0.1 mag at 21."""
    return np.round(0.01 + 0.09 * 10 ** (0.4 * (mag - 21.0)), 4)


def scenario_alerts(scenario: dict[str, Any], *, seed: int) -> list[dict[str, Any]]:
    """Every alert the scenario sends, in time order, as generic Baton alert JSON (see candidates.packets)."""
    start = _time(scenario["sim_start"], "sim_start")
    duration = scenario["duration_hours"]
    alerts: list[dict[str, Any]] = []
    for event in scenario["events"]:
        if event["kind"] == "replay":
            hours, observed, err = _replay(event, duration)
            event = {**event, **{k: DATASETS[event["dataset"]][k] for k in ("ra", "dec")}, "limit_mag": 99.0,
                     "classifications": event.get("classifications", [])}
        else:
            hours = np.arange(event["start_hours"], duration + 1e-9, event["cadence_hours"])
            truth = _pspl_mag(event, hours) if event["kind"] == "microlensing" else _transient_mag(event, hours)
            err = _mag_err(truth)
            rng = np.random.default_rng([seed, zlib.crc32(event["name"].encode())])
            observed = np.round(truth + rng.normal(0.0, 1.0, truth.size) * err, 4)
        points: list[dict[str, Any]] = []
        for k, (h, mag, sigma) in enumerate(zip(hours.tolist(), observed.tolist(), err.tolist(), strict=True)):
            if mag > event["limit_mag"]:
                continue
            at = (start + timedelta(hours=h)).isoformat().replace("+00:00", "Z")
            point = {"source_id": f"{event['name']}-{k}", "time": at, "band": event["band"], "mag": mag, "mag_err": sigma}
            alerts.append({
                "broker": DRILL_BROKER, "alert_id": f"{event['name']}-{k}", "object_id": f"DRILL-{event['name']}",
                "ra": event["ra"], "dec": event["dec"], "time": at, "band": event["band"], "mag": mag,
                "mag_err": sigma, "classifications": event["classifications"], "history": points[-10:],
                "extra": {"drill_event": event["name"], "kind": event["kind"]},
            })
            points.append(point)
    alerts.sort(key=lambda a: (a["time"], a["alert_id"]))
    return alerts


def preset(name: str) -> dict[str, Any]:
    """Ready-made scenarios the drill form offers."""
    if name == "bulge-microlensing":
        return {"duration_hours": 72, "step_minutes": 15, "sim_start": "2027-06-10T00:00:00Z",
                "events": [{"kind": "replay", "name": "OB03235", "dataset": "OB03235-OGLE", "peak_hours": 36,
                            "time_scale": 10}],
                "faults": [{"kind": "clouds", "site": "lsc", "at_hours": 0, "hours": 24},
                           {"kind": "slack_down", "at_hours": 0, "hours": 2}]}
    if name == "fast-transient":
        return {"duration_hours": 48, "step_minutes": 15,
                "events": [{"kind": "fast_transient", "name": "FT-1", "ra": 64.0, "dec": -20.0}],
                "faults": [{"kind": "downtime", "facility": "coj-1m0-a", "at_hours": 0, "hours": 48}]}
    raise ScenarioInvalid(f"no preset named {name!r}")


PRESETS = ("bulge-microlensing", "fast-transient")
