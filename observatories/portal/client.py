"""A client of an observation portal's request-group API (LCO's observation-portal and those that speak it).

What Baton's services and tasks use: typed results (`RemoteRequest`), typed
errors (`PortalError` permanent, `PortalUnavailable` transient), timeouts on
every call, retries with backoff on transient failures, and idempotent
submission.

The protocol is the LCO observation portal's (https://observation-portal.lco.global/,
source: github.com/observatorycontrolsystem/observation-portal):
``POST api/requestgroups/`` (submit), ``POST api/requestgroups/validate/``,
``GET api/requestgroups/{id}/``, ``GET api/requestgroups/?name=...`` (limit/offset
pages with ``next``), ``POST api/requestgroups/{id}/cancel/``,
``GET api/requests/{id}/observations/``, ``GET api/telescope_states/`` (keyed
``site.enclosure.telescope``) and ``GET api/instruments/``, with
``Authorization: Token <token>``. It works against any server that speaks it;
Baton's simulated network (``observatories.simnet``) is one. Paths are joined
relative to the facility's base URL, so a portal mounted under a prefix
(``.../sim/``) works.

Idempotent submission: the caller's idempotency key becomes the request group's
``name`` (a field the portal requires, keeps and filters on). Every submit first
looks the key up and returns an existing group instead of creating a second
one; so a submit retried after a timeout, a reset connection or a 5xx (in this
call, or in a later Celery retry of the same task) never makes two request groups.

Failure semantics are the portal's: a failed observation (weather, a fault)
does not end the request group, which stays PENDING while the portal's own
scheduler tries again within its windows; the group ends FAILURE_LIMIT_REACHED
only after the proposal's failure limit. So every observation's outcome is
read from its configuration statuses (``summary.reason``) and reported as an
`Attempt` under the group, whatever the group's state; a COMPLETED group never
carries an earlier attempt's reason. Data are not in the observation record:
they live in the facility's science archive (``observatories.archive``).
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

if TYPE_CHECKING:
    from observatories.models import Facility

logger = logging.getLogger(__name__)

__all__ = [
    "Attempt",
    "FacilityState",
    "FailureKind",
    "PortalClient",
    "PortalError",
    "PortalUnavailable",
    "RemoteRequest",
    "RequestState",
    "TelescopeEvent",
    "portal_client_for",
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
_FAILED_OBSERVATION_STATES = frozenset({"FAILED", "ABORTED", "NOT_ATTEMPTED"})
_AVAILABLE_EVENTS = {"AVAILABLE"}

_WEATHER_WORDS = ("weather", "cloud", "humidity", "wind", "rain", "transparency", "not ok to open", "dew")
_DOWNTIME_WORDS = ("downtime", "offline", "maintenance", "enclosure", "telescope", "sequencer", "unresponsive", "fault")


@dataclass(frozen=True)
class Attempt:
    """One observation of a request (an attempt by the portal's scheduler) and how it went.

    ``state`` is the observation's (PENDING, IN_PROGRESS, COMPLETED, FAILED,
    ABORTED, NOT_ATTEMPTED, CANCELED); ``reason`` the first configuration
    status's ``summary.reason`` that says anything (the portal keeps reasons
    there, not on the observation); ``failure_kind`` its classification, for
    failed attempts only.
    """

    observation_id: str
    request_id: str
    state: str
    reason: str = ""
    failure_kind: FailureKind | None = None
    site: str = ""
    telescope: str = ""
    start: datetime | None = None
    end: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.state in _FAILED_OBSERVATION_STATES


@dataclass(frozen=True)
class RemoteRequest:
    """A request group as the portal reports it, normalised.

    ``remote_id`` is the request group's id. ``state`` follows the portal's
    request-group states (FAILURE_LIMIT_REACHED and NOT_ATTEMPTED become
    FAILED); ``reason`` and ``failure_kind`` say why a FAILED or
    WINDOW_EXPIRED group ended (from its last failed attempt, when the portal
    says), and are empty for any other state. ``attempts`` are the
    observations the portal made of its requests, oldest first, whatever the
    group's state: a PENDING group may already hold failed attempts (the
    portal retries them itself). ``raw_state`` is the portal's own word.
    """

    remote_id: str
    state: RequestState
    raw_state: str
    name: str = ""
    reason: str = ""
    failure_kind: FailureKind | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    request_ids: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def failed_attempts(self) -> list[Attempt]:
        return [a for a in self.attempts if a.failed]


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
            if key in ("detail", "non_field_errors", "__all__", "error", "errors"):
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
        location_key: str = "",
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
        self.location_key = location_key
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

    def find(self, *, idempotency_key: str) -> RemoteRequest | None:
        """The request group named ``idempotency_key``, if the portal has one (retried on transient failures)."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._backoff(attempt)
            try:
                return self._find_by_name_once(idempotency_key)
            except _Transient as exc:
                last = exc
        raise PortalUnavailable(f"{self.base_url}: find {idempotency_key} failed after {self.retries + 1} attempts: {last}")

    def status(self, *, remote_id: str) -> RemoteRequest:
        """Return the request group ``remote_id`` with its state, its attempts and (if it ended badly) why."""
        group = self._json("GET", f"api/requestgroups/{self._id(remote_id)}/")
        return self._remote_request(group)

    def cancel(self, *, remote_id: str) -> RemoteRequest:
        """Cancel the request group ``remote_id`` if it is still pending; return its state after.

        Idempotent: cancelling a group that is already terminal (cancelled,
        completed, expired, failed) is not an error; the group is returned as it
        is, so a caller cancelling a twin learns that it completed after all.
        (LCO's portal answers 200 with the group unchanged; a portal that
        answers 400 or 409 is asked for the group's state instead.)
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

        The facility's own telescope key (``site.enclosure.telescope``, e.g.
        ``lsc.doma.1m0a``, as LCO keys them) is used, or its code (older
        simulators); failing that, any telescope of the facility's class at its
        site, where any available one makes the facility available (LCO's
        scheduler places a group on any of them). No matching telescope: unknown.
        """
        states = self.telescope_states()
        events = states.get(self.location_key) if self.location_key else None
        if events is None:
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

    def instruments(self) -> dict[str, dict[str, Any]]:
        """The portal's instrument types (``api/instruments/``): type -> its modes, optical elements, class."""
        body = self._json("GET", "api/instruments/")
        if not isinstance(body, dict):
            raise PortalError(f"{self.base_url}: instruments is not an object")
        return body

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
        # LCO filters names by substring and pages with limit/offset: read every page, keep exact matches.
        matches: list[dict[str, Any]] = []
        path: str | None = "api/requestgroups/"
        params: dict[str, Any] | None = {"name": name, "limit": 100}
        for _ in range(50):
            if path is None:
                break
            body = self._json_once("GET", path, params=params)
            results = body.get("results", []) if isinstance(body, dict) else body
            matches.extend(g for g in results if g.get("name") == name)
            nxt = body.get("next") if isinstance(body, dict) else None
            path, params = (str(nxt), None) if nxt else (None, None)
        matches.sort(key=lambda g: int(g["id"]))
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
        attempts: list[Attempt] = []
        start = end = None
        for request_id in request_ids:
            for obs in self._observations(request_id):
                obs_state = str(obs.get("state", ""))
                if obs_state in ("PENDING", "IN_PROGRESS", "COMPLETED") and start is None:
                    start, end = _parse_time(obs.get("start")), _parse_time(obs.get("end"))
                why = ""
                for cs in obs.get("configuration_statuses") or []:
                    why = why or str((cs.get("summary") or {}).get("reason") or "")
                failed = obs_state in _FAILED_OBSERVATION_STATES
                attempts.append(
                    Attempt(
                        observation_id=str(obs.get("id", "")), request_id=request_id, state=obs_state, reason=why,
                        failure_kind=failure_kind_from_reason(why) if failed and why else (FailureKind.OTHER if failed else None),
                        site=str(obs.get("site", "")), telescope=str(obs.get("telescope", "")),
                        start=_parse_time(obs.get("start")), end=_parse_time(obs.get("end")),
                    )
                )
        attempts.sort(key=lambda a: (a.start or datetime.min.replace(tzinfo=UTC), a.observation_id))
        reason = ""
        failure_kind: FailureKind | None = None
        if state in (RequestState.FAILED, RequestState.WINDOW_EXPIRED):
            last_failed = next((a for a in reversed(attempts) if a.failed and a.reason), None)
            if last_failed is not None:
                reason, failure_kind = last_failed.reason, last_failed.failure_kind
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
            scheduled_start=start,
            scheduled_end=end,
            request_ids=request_ids,
            attempts=attempts,
        )

    def _observations(self, request_id: str) -> list[dict[str, Any]]:
        """Every observation of a request (a plain list, or limit/offset pages with ``next``)."""
        out: list[dict[str, Any]] = []
        path: str | None = f"api/requests/{request_id}/observations/"
        for _ in range(50):
            if path is None:
                break
            body = self._json("GET", path)
            if isinstance(body, dict):
                out.extend(body.get("results") or [])
                path = str(body["next"]) if body.get("next") else None
            else:
                out.extend(body or [])
                path = None
        return out


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
    from observatories.portal.facility import adapter_class, speaks_portal_api
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
        location_key=facility.location_key,
        **options,
    )


