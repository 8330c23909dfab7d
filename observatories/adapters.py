"""Facility adapters: a client for the LCO observation-portal request-group API, and a TOM facility class on it.

Two faces, one protocol:

- `PortalClient` (from `portal_client_for(facility)`) is what Baton's own
  services and tasks use: typed results (`RemoteRequest`), typed errors
  (`PortalError` permanent, `PortalUnavailable` transient), timeouts on every
  call, retries with backoff on transient failures, and idempotent submission.
- `PortalFacility` is a TOM Toolkit ``BaseRoboticObservationFacility`` over the
  same client, so Baton's facilities show up in TOM's own pages (the target's
  Observe tab, observation records, facility status) as the "Baton" facility.

The protocol is the LCO observation portal's (https://observation-portal.lco.global/):
``POST api/requestgroups/`` (submit), ``POST api/requestgroups/validate/``,
``GET api/requestgroups/{id}/``, ``GET api/requestgroups/?name=...``,
``POST api/requestgroups/{id}/cancel/``, ``GET api/requests/{id}/observations/``
and ``GET api/telescope_states/``, with ``Authorization: Token <token>``. It
works against any server that speaks it; Baton's simulated network
(``observatories.simnet``) is one. Paths are joined relative to the facility's
base URL, so a portal mounted under a prefix (``.../sim/``) works.

Idempotent submission: the caller's idempotency key becomes the request group's
``name`` (a field the portal keeps and filters on). Every submit first looks
the key up and returns an existing group instead of creating a second one; so
a submit retried after a timeout, a reset connection or a 5xx (in this call, or
in a later Celery retry of the same task) never makes two request groups.

Baton extensions the simulator adds (a real portal may omit them; the client
then reports what it has): each observation's ``fail_reason`` and
``photometry`` (points with time, band, mag, mag_err).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from tom_observations.facility import BaseRoboticObservationFacility

if TYPE_CHECKING:
    from observatories.models import Facility, Instrument

logger = logging.getLogger(__name__)

__all__ = [
    "Exposure",
    "FacilityState",
    "FailureKind",
    "PhotometryPoint",
    "PortalClient",
    "PortalError",
    "PortalFacility",
    "PortalUnavailable",
    "RemoteRequest",
    "RequestState",
    "TelescopeEvent",
    "portal_client_for",
    "request_group_payload",
]

# LCO's request-group names are at most 50 characters.
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,49}$")


class PortalError(Exception):
    """A permanent failure: the portal refused the call (4xx) or answered something unusable.

    ``messages`` are the server's own error messages, flattened to
    ``"field.path: message"`` strings; retrying the same call will not help.
    """

    def __init__(self, message: str, *, status_code: int | None = None, messages: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.messages = list(messages)


class PortalUnavailable(Exception):
    """A transient failure that outlasted the client's retries: timeout, connection error, 5xx or 429.

    Safe to retry later (a Celery task should, with backoff): submission is
    idempotent by key, and the other calls change nothing or are idempotent.
    """


class RequestState(StrEnum):
    """A request group's state, normalised from the portal's."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    WINDOW_EXPIRED = "WINDOW_EXPIRED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self is not RequestState.PENDING


class FailureKind(StrEnum):
    """Why an observation failed: the planner treats weather and downtime as re-plannable elsewhere."""

    WEATHER = "weather"
    DOWNTIME = "downtime"
    OTHER = "other"


# The portal's request/request-group states and what they mean here.
_STATE_MAP = {
    "PENDING": RequestState.PENDING,
    "SCHEDULED": RequestState.PENDING,
    "COMPLETED": RequestState.COMPLETED,
    "WINDOW_EXPIRED": RequestState.WINDOW_EXPIRED,
    "CANCELED": RequestState.CANCELED,
    "FAILURE_LIMIT_REACHED": RequestState.FAILED,
    "NOT_ATTEMPTED": RequestState.FAILED,
    "FAILED": RequestState.FAILED,
}

# Telescope-state event types (LCO's ``telescope_states``) and the facility state they mean.
_WEATHER_EVENTS = {"NOT_OK_TO_OPEN", "WEATHER"}
_AVAILABLE_EVENTS = {"AVAILABLE"}

_WEATHER_WORDS = ("weather", "cloud", "humidity", "wind", "rain", "transparency", "not ok to open", "dew")
_DOWNTIME_WORDS = ("downtime", "offline", "maintenance", "enclosure", "telescope", "sequencer", "unresponsive", "fault")


@dataclass(frozen=True)
class PhotometryPoint:
    """One photometric measurement: UTC time, band (filter name), AB/Vega magnitude and its 1-sigma error."""

    time: datetime
    band: str
    mag: float
    mag_err: float


@dataclass(frozen=True)
class RemoteRequest:
    """A request group as the portal reports it, normalised.

    ``remote_id`` is the request group's id. ``state`` follows the portal's
    request-group states (FAILURE_LIMIT_REACHED and NOT_ATTEMPTED become
    FAILED); ``failure_kind`` says why a FAILED (or WINDOW_EXPIRED) request
    failed, when the portal says; ``data`` has the photometric points of a
    COMPLETED request. ``raw_state`` is the portal's own word.
    """

    remote_id: str
    state: RequestState
    raw_state: str
    name: str = ""
    reason: str = ""
    failure_kind: FailureKind | None = None
    data: list[PhotometryPoint] = field(default_factory=list)
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    request_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TelescopeEvent:
    """One entry of the portal's telescope states: what a telescope is doing over [start, end]."""

    telescope: str
    event_type: str
    reason: str
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class FacilityState:
    """A facility's state from its portal: available, weather, downtime or unknown, with a reason."""

    state: str
    reason: str
    observed_at: datetime | None


@dataclass(frozen=True)
class Exposure:
    """One filter's exposures in a request: ``count`` exposures of ``exposure_time_s`` seconds."""

    filter: str
    exposure_time_s: float
    count: int = 1


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _flatten_errors(body: Any, prefix: str = "") -> list[str]:
    """Flatten a DRF-style error body ({"field": ["msg"], "requests": [{...}]}) into readable strings."""
    out: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("detail", "non_field_errors", "__all__", "error"):
                out.extend(_flatten_errors(value, prefix))
            else:
                out.extend(_flatten_errors(value, f"{prefix}{key}." if prefix or key else ""))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            if isinstance(value, dict | list):
                if value:
                    out.extend(_flatten_errors(value, f"{prefix}{index}."))
            else:
                out.extend(_flatten_errors(value, prefix))
    elif body not in (None, ""):
        label = prefix.rstrip(".")
        out.append(f"{label}: {body}" if label else str(body))
    return out


def failure_kind_from_reason(reason: str) -> FailureKind:
    """Classify a portal's failure reason text as weather, downtime or other."""
    text = reason.lower()
    if any(word in text for word in _WEATHER_WORDS):
        return FailureKind.WEATHER
    if any(word in text for word in _DOWNTIME_WORDS):
        return FailureKind.DOWNTIME
    return FailureKind.OTHER


class _Transient(Exception):
    """One attempt failed in a way worth retrying (internal)."""


class PortalClient:
    """A client of one observation portal (LCO request-group API), bound to one Baton facility.

    Contract of every method: each HTTP call has ``timeout_s`` (connect and
    read); transient failures (timeout, connection error, 5xx, 429) are retried
    up to ``retries`` more times with exponential backoff from ``backoff_s``,
    then raised as `PortalUnavailable`; a 4xx is raised at once as `PortalError`
    with the server's messages. ``sleep`` is injectable so tests need not wait.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str = "",
        facility_code: str = "",
        site_code: str = "",
        telescope_class: str = "",
        timeout_s: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token = token
        self.facility_code = facility_code
        self.site_code = site_code
        self.telescope_class = telescope_class
        self.timeout_s = settings.OBSERVATORIES_HTTP_TIMEOUT_S if timeout_s is None else timeout_s
        self.retries = settings.OBSERVATORIES_HTTP_RETRIES if retries is None else retries
        self.backoff_s = settings.OBSERVATORIES_HTTP_BACKOFF_S if backoff_s is None else backoff_s
        self.session = session or requests.Session()
        self.sleep = sleep

    # -- the API ----------------------------------------------------------------------------

    def submit(self, *, payload: dict[str, Any], idempotency_key: str) -> RemoteRequest:
        """Submit a request group once per ``idempotency_key``; return it as the portal has it.

        The key (1-50 characters of letters, digits, ``._:-``) becomes the
        group's ``name``. Before every POST the client looks the key up, so if
        an earlier attempt (here or in another process) was committed by the
        portal but its answer lost, that group is returned and no second one is
        made. Raises `PortalError` for a refused request (e.g. malformed, or the
        target never visible in the window), `PortalUnavailable` when the portal
        stays unreachable.
        """
        if not IDEMPOTENCY_KEY_RE.match(idempotency_key):
            raise PortalError(f"idempotency key {idempotency_key!r} must be 1-50 characters of [A-Za-z0-9._:-]")
        body = {**payload, "name": idempotency_key}
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._backoff(attempt)
            try:
                existing = self._find_by_name_once(idempotency_key)
                if existing is not None:
                    return existing
                group = self._json_once("POST", "api/requestgroups/", json=body)
                return self._remote_request(group)
            except _Transient as exc:
                last = exc
                logger.info("submit %s to %s: attempt %d failed: %s", idempotency_key, self.base_url, attempt + 1, exc)
        raise PortalUnavailable(f"{self.base_url}: submit {idempotency_key} failed after {self.retries + 1} attempts: {last}")

    def status(self, *, remote_id: str) -> RemoteRequest:
        """Return the request group ``remote_id`` with its state, failure reason and data."""
        group = self._json("GET", f"api/requestgroups/{self._id(remote_id)}/")
        return self._remote_request(group)

    def cancel(self, *, remote_id: str) -> RemoteRequest:
        """Cancel the request group ``remote_id`` if it is still pending; return its state after.

        Idempotent: cancelling a group that is already terminal (cancelled,
        completed, expired, failed) is not an error; the group is returned as it
        is, so a caller cancelling a twin learns that it completed after all.
        """
        rid = self._id(remote_id)
        try:
            group = self._json("POST", f"api/requestgroups/{rid}/cancel/")
        except PortalError as exc:
            if exc.status_code not in (400, 409):
                raise
            current = self.status(remote_id=rid)
            if current.state.terminal:
                return current
            raise
        return self._remote_request(group)

    def validate(self, *, payload: dict[str, Any]) -> list[str]:
        """Ask the portal whether ``payload`` would be accepted; return its errors (empty: valid)."""
        try:
            body = self._json("POST", "api/requestgroups/validate/", json=payload)
        except PortalError as exc:
            if exc.status_code == 400:
                return exc.messages or [str(exc)]
            raise
        return _flatten_errors(body.get("errors") or {}) if isinstance(body, dict) else []

    def telescope_states(self) -> dict[str, list[TelescopeEvent]]:
        """Return the portal's telescope states: telescope key -> its current events."""
        body = self._json("GET", "api/telescope_states/")
        if not isinstance(body, dict):
            raise PortalError(f"{self.base_url}: telescope_states is not an object")
        states: dict[str, list[TelescopeEvent]] = {}
        for key, events in body.items():
            states[key] = [
                TelescopeEvent(
                    telescope=str(event.get("telescope", key)),
                    event_type=str(event.get("event_type", "")),
                    reason=str(event.get("event_reason", "")),
                    start=_parse_time(event.get("start")),
                    end=_parse_time(event.get("end")),
                )
                for event in events or []
            ]
        return states

    def facility_state(self) -> FacilityState:
        """Return the bound facility's state from the portal's telescope states.

        The telescope whose key is the facility code is used (Baton's simulator
        keys by facility code); failing that, LCO-style keys
        ``site.enclosure.telescope`` at the facility's site and telescope class
        (e.g. ``lsc.doma.1m0a``), where any available telescope makes the
        facility available. No matching telescope: unknown.
        """
        states = self.telescope_states()
        events = states.get(self.facility_code)
        if events is None and self.site_code:
            candidates = [
                evs
                for key, evs in states.items()
                if key.split(".")[0] == self.site_code and key.split(".")[-1].startswith(self.telescope_class)
            ]
            available = [evs for evs in candidates if evs and evs[0].event_type in _AVAILABLE_EVENTS]
            events = available[0] if available else (candidates[0] if candidates else None)
        if not events:
            return FacilityState(state="unknown", reason="the portal reports no state for this telescope", observed_at=None)
        event = events[0]
        if event.event_type in _AVAILABLE_EVENTS:
            state = "available"
        elif event.event_type in _WEATHER_EVENTS:
            state = "weather"
        else:
            state = "downtime"
        reason = event.reason or event.event_type
        return FacilityState(state=state, reason=reason, observed_at=event.start)

    def observation_url(self, *, remote_id: str) -> str:
        """The URL of the request group on the portal."""
        return urljoin(self.base_url, f"api/requestgroups/{self._id(remote_id)}/")

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _id(remote_id: str | int) -> str:
        text = str(remote_id)
        if not text.isdigit():
            raise PortalError(f"remote id {remote_id!r} is not a request-group id")
        return text

    def _backoff(self, attempt: int) -> None:
        self.sleep(min(self.backoff_s * (2 ** (attempt - 1)), 30.0))

    def _headers(self) -> dict[str, str]:
        from tomsite import sandbox

        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        box = sandbox.current()
        if box is not None:  # the simulator answers a drill from the drill's own schema, at the drill's time
            headers["X-Baton-Drill"] = box.schema
            if box.now is not None:
                headers["X-Baton-Drill-Now"] = box.now.isoformat()
        return headers

    def _json_once(self, method: str, path: str, **kwargs: Any) -> Any:
        """One HTTP call: the decoded JSON body; `_Transient` or `PortalError` on failure."""
        url = urljoin(self.base_url, path)
        try:
            response = self.session.request(method, url, headers=self._headers(), timeout=self.timeout_s, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise _Transient(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise _Transient(f"{method} {url}: HTTP {response.status_code}")
        try:
            body = response.json() if response.content else {}
        except ValueError as exc:
            if response.ok:
                raise _Transient(f"{method} {url}: not JSON") from exc
            body = response.text[:500]
        if not response.ok:
            messages = _flatten_errors(body) or [f"HTTP {response.status_code}"]
            raise PortalError(
                f"{method} {url}: HTTP {response.status_code}: {'; '.join(messages)}",
                status_code=response.status_code,
                messages=messages,
            )
        return body

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`_json_once` with retries on transient failures (for calls that are safe to repeat)."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._backoff(attempt)
            try:
                return self._json_once(method, path, **kwargs)
            except _Transient as exc:
                last = exc
        raise PortalUnavailable(f"{self.base_url}: {method} {path} failed after {self.retries + 1} attempts: {last}")

    def _find_by_name_once(self, name: str) -> RemoteRequest | None:
        # LCO filters names by substring: keep exact matches, the oldest first.
        body = self._json_once("GET", "api/requestgroups/", params={"name": name, "limit": 100})
        results = body.get("results", []) if isinstance(body, dict) else body
        matches = sorted((g for g in results if g.get("name") == name), key=lambda g: int(g["id"]))
        if len(matches) > 1:
            logger.warning("%s: %d request groups named %s; using the first", self.base_url, len(matches), name)
        return self._remote_request(matches[0]) if matches else None

    def _remote_request(self, group: Any) -> RemoteRequest:
        try:
            raw_state = str(group["state"])
            remote_id = str(group["id"])
            requests_ = list(group.get("requests") or [])
        except (KeyError, TypeError) as exc:
            raise PortalError(f"{self.base_url}: malformed request group: {group!r:.200}") from exc
        state = _STATE_MAP.get(raw_state)
        if state is None:
            raise PortalError(f"{self.base_url}: unknown request-group state {raw_state!r}")
        request_ids = [str(r["id"]) for r in requests_ if "id" in r]
        reason = ""
        failure_kind: FailureKind | None = None
        data: list[PhotometryPoint] = []
        start = end = None
        for request_id in request_ids:
            observations = self._json("GET", f"api/requests/{request_id}/observations/")
            if isinstance(observations, dict):
                observations = observations.get("results", [])
            for obs in observations or []:
                obs_state = str(obs.get("state", ""))
                if obs_state in ("PENDING", "IN_PROGRESS", "COMPLETED") and start is None:
                    start, end = _parse_time(obs.get("start")), _parse_time(obs.get("end"))
                why = str(obs.get("fail_reason") or "")
                if not why:
                    for cs in obs.get("configuration_statuses") or []:
                        why = why or str((cs.get("summary") or {}).get("reason") or "")
                if obs_state in ("FAILED", "ABORTED", "NOT_ATTEMPTED") and why:
                    reason = why
                for point in obs.get("photometry") or []:
                    data.append(
                        PhotometryPoint(
                            time=_parse_time(point["time"]),  # type: ignore[arg-type]  # required by the protocol
                            band=str(point["band"]),
                            mag=float(point["mag"]),
                            mag_err=float(point["mag_err"]),
                        )
                    )
        if state in (RequestState.FAILED, RequestState.WINDOW_EXPIRED):
            if reason:
                failure_kind = failure_kind_from_reason(reason)
            elif state is RequestState.FAILED:
                reason, failure_kind = f"the portal reports {raw_state}", FailureKind.OTHER
            else:
                reason = "the window closed before the request was observed"
        return RemoteRequest(
            remote_id=remote_id,
            state=state,
            raw_state=raw_state,
            name=str(group.get("name", "")),
            reason=reason,
            failure_kind=failure_kind,
            data=sorted(data, key=lambda p: p.time),
            scheduled_start=start,
            scheduled_end=end,
            request_ids=request_ids,
        )


def adapter_class(facility: Facility) -> type[BaseRoboticObservationFacility]:
    """Import the facility's adapter class; a clear `ImproperlyConfigured` if it cannot be used."""
    try:
        cls = import_string(facility.adapter)
    except ImportError as exc:
        raise ImproperlyConfigured(f"facility {facility.code}: adapter {facility.adapter!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseRoboticObservationFacility)):
        raise ImproperlyConfigured(
            f"facility {facility.code}: adapter {facility.adapter!r} is not a TOM BaseRoboticObservationFacility"
        )
    return cls


def speaks_portal_api(cls: type) -> bool:
    """Whether a TOM facility class talks the LCO portal API: `PortalFacility`, or TOM's OCS family (LCO, SOAR, ...)."""
    from tom_observations.facilities.ocs import OCSFacility

    return issubclass(cls, PortalFacility | OCSFacility)


def portal_client_for(facility: Facility, **options: Any) -> PortalClient:
    """Return the portal client for ``facility`` (its base URL, token and codes bound).

    The facility's adapter must speak the portal API: `PortalFacility` or a
    subclass, or one of TOM's own OCS-based modules (``LCOFacility``,
    ``SOARFacility``, ...; then ``api_url`` and ``api_token`` name the real
    portal, e.g. ``https://observe.lco.global/``). ``options`` go to
    `PortalClient` (timeouts, retries, a session, a sleep). Raises
    ``ImproperlyConfigured`` for an adapter that cannot be imported or does not
    speak the API (drive such a facility through its TOM class).
    """
    from tomsite import sandbox

    if sandbox.active() and not facility.simulated:
        # A drill rehearses on the simulated network only; this is the last door before the wire.
        raise PortalError(f"facility {facility.code} is not simulated: a drill never reaches a real facility")
    cls = adapter_class(facility)
    if not speaks_portal_api(cls):
        raise ImproperlyConfigured(
            f"facility {facility.code}: adapter {facility.adapter} does not speak the portal API; "
            "drive it through its TOM facility class"
        )
    return PortalClient(
        base_url=facility.portal_base_url,
        token=facility.portal_token,
        facility_code=facility.code,
        site_code=facility.site.code,
        telescope_class=facility.telescope_class,
        **options,
    )


def request_group_payload(
    *,
    target_name: str,
    ra_deg: float,
    dec_deg: float,
    instrument: Instrument,
    exposures: Sequence[Exposure],
    window_start: datetime,
    window_end: datetime,
    max_airmass: float = 2.0,
    min_lunar_distance_deg: float = 30.0,
    ipp_value: float = 1.0,
    proposal: str = "baton",
    observation_type: str = "NORMAL",
    target_mag: float | None = None,
) -> dict[str, Any]:
    """Build an LCO-style request-group payload for one target on one instrument.

    One request with one configuration (EXPOSE for imaging, SPECTRUM for
    spectra) holding one instrument configuration per `Exposure`, one window,
    and the location (the instrument's facility's telescope class and site).
    ``instrument_type`` is the Baton instrument code. The ``name`` is left out:
    `PortalClient.submit` sets it to the idempotency key. ``target_mag`` (V-ish
    magnitude) goes into the target's ``extra_params`` as a hint the simulator
    uses for realistic photometry.

    Raises ``ValueError`` for an empty exposure list, a filter the instrument
    does not have, a non-positive exposure, an airmass limit below 1, a lunar
    distance outside [0, 180], coordinates out of range, naive datetimes or
    ``window_end <= window_start``.
    """
    if not exposures:
        raise ValueError("at least one exposure is needed")
    if not (0.0 <= ra_deg < 360.0 and -90.0 <= dec_deg <= 90.0):
        raise ValueError(f"coordinates out of range: ra={ra_deg}, dec={dec_deg}")
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window times must be timezone-aware (UTC)")
    if window_end <= window_start:
        raise ValueError("window_end must be after window_start")
    if max_airmass < 1.0:
        raise ValueError("max_airmass must be at least 1")
    if not (0.0 <= min_lunar_distance_deg <= 180.0):
        raise ValueError("min_lunar_distance_deg must be in [0, 180]")
    instrument_configs = []
    for exposure in exposures:
        if instrument.filters and exposure.filter not in instrument.filters:
            raise ValueError(f"{instrument.code} has no filter {exposure.filter!r} (it has {', '.join(instrument.filters)})")
        if exposure.exposure_time_s <= 0 or exposure.count < 1:
            raise ValueError("exposure times must be positive and counts at least 1")
        instrument_configs.append(
            {
                "exposure_time": float(exposure.exposure_time_s),
                "exposure_count": int(exposure.count),
                "mode": "default",
                "optical_elements": {"filter": exposure.filter},
                "extra_params": {},
            }
        )
    target: dict[str, Any] = {
        "name": target_name,
        "type": "ICRS",
        "ra": float(ra_deg),
        "dec": float(dec_deg),
        "epoch": 2000.0,
        "extra_params": {},
    }
    if target_mag is not None:
        target["extra_params"]["v_magnitude"] = float(target_mag)
    facility = instrument.facility
    return {
        "proposal": proposal,
        "ipp_value": float(ipp_value),
        "operator": "SINGLE",
        "observation_type": observation_type,
        "requests": [
            {
                "acceptability_threshold": 90,
                "configurations": [
                    {
                        "type": "SPECTRUM" if instrument.kind == "spectra" else "EXPOSE",
                        "instrument_type": instrument.code,
                        "target": target,
                        "constraints": {
                            "max_airmass": float(max_airmass),
                            "min_lunar_distance": float(min_lunar_distance_deg),
                        },
                        "acquisition_config": {"mode": "OFF"},
                        "guiding_config": {"mode": "ON", "optional": True},
                        "instrument_configs": instrument_configs,
                    }
                ],
                "windows": [{"start": _iso(window_start), "end": _iso(window_end)}],
                "location": {"telescope_class": facility.telescope_class, "site": facility.site.code},
            }
        ],
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The TOM face ------------------------------------------------------------------------------

from observatories.forms import PortalObservationForm  # noqa: E402  (the form needs the helpers above)


class PortalFacility(BaseRoboticObservationFacility):
    """Baton's network as one TOM facility, "Baton": every enabled facility whose adapter this is.

    TOM observation ids are ``"<facility code>:<request-group id>"``, so status,
    cancel and data calls find their facility. Data (photometry) is saved as a
    TOM photometry data product, processed into the target's light curve.
    """

    name = "Baton"
    observation_forms = {"IMAGING": PortalObservationForm}
    detail_url_name = "observatories:network"
    button_label = "Baton network"
    button_tooltip = "Observe with a facility of Baton's network"

    def get_form(self, observation_type: str) -> type[PortalObservationForm]:
        return PortalObservationForm

    def get_template_form(self, observation_type: str) -> None:
        return None

    @staticmethod
    def _split(observation_id: str) -> tuple[Facility, str]:
        from observatories.models import Facility

        code, _, remote_id = str(observation_id).rpartition(":")
        facility = Facility.objects.select_related("site").filter(code=code).first()
        if facility is None or not remote_id:
            raise PortalError(f"observation id {observation_id!r} names no Baton facility")
        return facility, remote_id

    def submit_observation(self, observation_payload: dict[str, Any]) -> list[str]:
        """Submit the form's payload (facility code, request group, key); return TOM observation ids."""
        from observatories.models import Facility

        facility = Facility.objects.select_related("site").get(code=observation_payload["facility"])
        remote = portal_client_for(facility).submit(
            payload=observation_payload["payload"], idempotency_key=observation_payload["idempotency_key"]
        )
        return [f"{facility.code}:{remote.remote_id}"]

    def validate_observation(self, observation_payload: dict[str, Any]) -> list[str]:
        from observatories.models import Facility

        facility = Facility.objects.select_related("site").get(code=observation_payload["facility"])
        return portal_client_for(facility).validate(payload=observation_payload["payload"])

    def cancel_observation(self, observation_id: str) -> bool:
        facility, remote_id = self._split(observation_id)
        return portal_client_for(facility).cancel(remote_id=remote_id).state is RequestState.CANCELED

    def get_observation_url(self, observation_id: str) -> str:
        facility, remote_id = self._split(observation_id)
        return portal_client_for(facility).observation_url(remote_id=remote_id)

    def get_terminal_observing_states(self) -> list[str]:
        return ["COMPLETED", "WINDOW_EXPIRED", "CANCELED", "FAILURE_LIMIT_REACHED", "NOT_ATTEMPTED"]

    def get_failed_observing_states(self) -> list[str]:
        return ["WINDOW_EXPIRED", "CANCELED", "FAILURE_LIMIT_REACHED", "NOT_ATTEMPTED"]

    def get_observing_sites(self) -> dict[str, dict[str, Any]]:
        """Sites of the enabled facilities, in TOM's format (for TOM's own visibility plot)."""
        from observatories.models import Site

        sites = Site.objects.filter(facilities__enabled=True).distinct()
        return {
            s.name: {"sitecode": s.code, "latitude": s.latitude_deg, "longitude": s.longitude_deg, "elevation": s.elevation_m}
            for s in sites
        }

    def get_facility_status(self) -> dict[str, Any]:
        """The facility-status feed in TOM's format (sites -> telescopes -> status)."""
        from django.utils import timezone

        from observatories.models import Facility
        from observatories.selectors import facility_status_current

        now = timezone.now()
        sites: dict[str, list[dict[str, str]]] = {}
        for facility in Facility.objects.filter(enabled=True).select_related("site"):
            current = facility_status_current(facility=facility, now=now)
            sites.setdefault(facility.site.code, []).append({"code": facility.code, "status": current.state.upper()})
        return {"code": self.name, "sites": [{"code": code, "telescopes": tels} for code, tels in sites.items()]}

    def get_observation_status(self, observation_id: str) -> dict[str, Any]:
        facility, remote_id = self._split(observation_id)
        remote = portal_client_for(facility).status(remote_id=remote_id)
        return {"state": remote.raw_state, "scheduled_start": remote.scheduled_start, "scheduled_end": remote.scheduled_end}

    def data_products(self, observation_id: str, product_id: str | None = None) -> list[dict[str, Any]]:
        facility, remote_id = self._split(observation_id)
        client = portal_client_for(facility)
        remote = client.status(remote_id=remote_id)
        if not remote.data:
            return []
        return [
            {
                "id": f"{observation_id}:photometry",
                "filename": f"{facility.code}-{remote_id}-photometry.csv",
                "created": remote.data[-1].time,
                "url": client.observation_url(remote_id=remote_id),
            }
        ]

    def save_data_products(self, observation_record: Any, product_id: str | None = None) -> list[Any]:
        """Save a completed request's photometry as a TOM photometry data product (idempotent)."""
        from django.core.files.base import ContentFile
        from tom_dataproducts.data_processor import run_data_processor
        from tom_dataproducts.models import DataProduct

        facility, remote_id = self._split(observation_record.observation_id)
        remote = portal_client_for(facility).status(remote_id=remote_id)
        if not remote.data:
            return []
        product_key = f"{observation_record.observation_id}:photometry"
        existing = DataProduct.objects.filter(product_id=product_key).first()
        if existing is not None:
            return [existing]
        from astropy.time import Time

        lines = ["time,filter,magnitude,error"]
        for point in remote.data:
            lines.append(f"{Time(point.time).mjd:.6f},{point.band},{point.mag:.4f},{point.mag_err:.4f}")
        product = DataProduct(
            product_id=product_key,
            target=observation_record.target,
            observation_record=observation_record,
            data_product_type="photometry",
        )
        product.data.save(f"{facility.code}-{remote_id}-photometry.csv", ContentFile("\n".join(lines) + "\n"), save=True)
        run_data_processor(product)
        return [product]
