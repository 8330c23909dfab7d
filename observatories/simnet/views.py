"""The simulator's HTTP API under ``/sim/``: the LCO portal's request-group API, plus control endpoints.

Every endpoint needs ``Authorization: Token <SIMNET_TOKEN>`` (403 otherwise, as the portal answers)
and speaks JSON. Portal endpoints (as the LCO observation portal):

- ``GET  api/requestgroups/?name=&state=&limit=&offset=`` list (name matches by substring, as LCO's)
- ``POST api/requestgroups/`` submit: 201 with the group; 400 with field errors
- ``POST api/requestgroups/validate/`` 200 ``{"request_durations": ..., "errors": {...}}``
- ``GET  api/requestgroups/{id}/``; ``POST api/requestgroups/{id}/cancel/`` (200; an ended group unchanged)
- ``GET  api/requests/{id}/``; ``GET api/requests/{id}/observations/`` (reasons in configuration statuses)
- ``GET  api/telescope_states/`` telescope key (``site.enclosure.telescope``) -> [event]
- ``GET  api/instruments/`` instrument type -> optical elements, modes, class

Control endpoints (for tests, drills and the demo's beat task):

- ``GET  api/clock/`` simulated now; ``POST api/tick/ {"now"?: iso, "advance_s"?: s}`` moves the clock
  (optional) and decides every observation that has ended
- ``GET  api/weather/`` each site's weather now; ``POST api/weather/ {"site", "state": clear|cloudy|prior, "hours"?: 24}``
- ``POST api/downtime/ {"facility", "reason"?, "hours"?}``; ``POST api/downtime/clear/ {"facility"}``
- ``POST api/faults/ {"kind": error_500|error_500_after|delay_after, "path"?: prefix, "method"?, "count"?: 1, "delay_s"?}``;
  ``POST api/faults/clear/``

These endpoints emulate a remote observatory, not Baton's own API, so they are
not in Baton's OpenAPI description.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from observatories.models import Facility, Instrument, Site
from observatories.simnet import services
from observatories.simnet.auth import simnet_token_ok
from observatories.simnet.models import SimFault, SimObservation, SimRequest, SimRequestGroup
from tomsite import sandbox

Handler = Callable[..., tuple[int, Any]]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _take_fault(request: HttpRequest) -> SimFault | None:
    """Consume one matching injected fault, if any (atomically: concurrent calls never share one)."""
    path = request.path.split("/sim/", 1)[-1]
    with transaction.atomic():
        for fault in SimFault.objects.select_for_update().filter(remaining__gt=0):
            if fault.method and fault.method.upper() != request.method:
                continue
            if fault.path_prefix and not path.startswith(fault.path_prefix):
                continue
            fault.remaining -= 1
            fault.save(update_fields=["remaining"])
            return fault
    return None


def _in_drill(request: HttpRequest, schema: str, answer: Callable[[], HttpResponse]) -> HttpResponse:
    """Answer a drill's call from the drill's own schema at the drill's simulated time (see ``drills``)."""
    if not sandbox.schema_exists(schema):
        return JsonResponse({"detail": f"no such drill: {schema!r}"}, status=400)
    now = None
    if request.headers.get("X-Baton-Drill-Now"):
        try:
            now = datetime.fromisoformat(request.headers["X-Baton-Drill-Now"])
        except ValueError:
            return JsonResponse({"detail": "X-Baton-Drill-Now: not an ISO-8601 time"}, status=400)
        if now.tzinfo is None:
            return JsonResponse({"detail": "X-Baton-Drill-Now: give a time zone"}, status=400)
    box = sandbox.Sandbox(drill_id=int(schema.split("_", 1)[1]), schema=schema, name=schema, now=now)
    with sandbox.running(box):
        return answer()


def sim_api(*methods: str, faults: bool = True) -> Callable[[Handler], Callable[..., HttpResponse]]:
    """Wrap a handler ``(request, body, **kwargs) -> (status, data)``: methods, token, JSON body, faults."""

    def wrap(handler: Handler) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(handler)
        def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
            # As the portal's DRF stack (session authentication first): 403, not 401, for a missing or bad token.
            auth = request.headers.get("Authorization", "")
            if not auth:
                return JsonResponse({"detail": "Authentication credentials were not provided."}, status=403)
            if not simnet_token_ok(auth):
                return JsonResponse({"detail": "Invalid token."}, status=403)
            drill = request.headers.get("X-Baton-Drill", "")
            if drill and sandbox.current() is None:
                return _in_drill(request, drill, lambda: view(request, **kwargs))
            body: Any = {}
            if request.method == "POST" and request.body:
                try:
                    body = json.loads(request.body)
                except ValueError:
                    return JsonResponse({"detail": "JSON parse error."}, status=400)
            fault = _take_fault(request) if faults else None
            if fault is not None and fault.kind == SimFault.Kind.ERROR_500:
                return JsonResponse({"detail": "injected fault: internal server error"}, status=500)
            status, data = handler(request, body, **kwargs)
            if fault is not None and fault.kind == SimFault.Kind.ERROR_500_AFTER:
                return JsonResponse({"detail": "injected fault: internal server error after the work was done"}, status=500)
            if fault is not None and fault.kind == SimFault.Kind.DELAY_AFTER:
                time.sleep(min(fault.delay_s, 30.0))
            return JsonResponse(data, status=status, safe=False)

        return view

    return wrap


# -- serialisation -----------------------------------------------------------------------------


def request_json(request: SimRequest) -> dict[str, Any]:
    return {
        "id": request.pk,
        "state": request.state,
        "acceptability_threshold": request.acceptability_threshold,
        "configuration_repeats": 1,
        "optimization_type": "TIME",
        "observation_note": "",
        "modified": _iso(request.modified),
        "duration": round(request.duration_s),
        "configurations": request.configurations,
        "location": request.location,
        "windows": request.windows,
    }


def group_json(group: SimRequestGroup) -> dict[str, Any]:
    return {
        "id": group.pk,
        "submitter": "baton",
        "proposal": group.proposal,
        "name": group.name,
        "observation_type": group.observation_type,
        "operator": group.operator,
        "ipp_value": group.ipp_value,
        "state": group.state,
        "created": _iso(group.created),
        "modified": _iso(group.modified),
        "requests": [request_json(r) for r in group.requests.all()],
    }


def observation_json(observation: SimObservation) -> dict[str, Any]:
    """As the portal's observation: where and when, its state, and each configuration's status with its summary.

    The failure's reason is only in ``configuration_statuses[].summary.reason`` (the portal has no other place
    for it), and there is no data here: data are in the science archive (``/sim/archive/``).
    """
    facility = observation.facility
    done = observation.state in ("COMPLETED", "FAILED", "ABORTED")
    return {
        "id": observation.pk,
        "request": observation.request_id,
        "site": facility.site.code,
        "enclosure": facility.enclosure,
        "telescope": facility.telescope or facility.code,
        "start": _iso(observation.start),
        "end": _iso(observation.end),
        "priority": 10,
        "state": observation.state,
        "modified": _iso(observation.modified),
        "created": _iso(observation.modified),
        "configuration_statuses": [
            {
                "id": observation.pk,
                "configuration": index,
                "instrument_name": facility.code,
                "guide_camera_name": "",
                "state": observation.state,
                "summary": (
                    {
                        "state": observation.state,
                        "reason": observation.fail_reason,
                        "start": _iso(observation.start),
                        "end": _iso(observation.end),
                        "time_completed": (observation.end - observation.start).total_seconds()
                        if observation.state == "COMPLETED" else 0.0,
                        "events": [],
                    }
                    if done else {}
                ),
            }
            for index, _ in enumerate(observation.request.configurations or [{}])
        ],
    }


def _page_url(request: HttpRequest, *, limit: int, offset: int) -> str:
    query = request.GET.copy()
    query["limit"], query["offset"] = str(limit), str(offset)
    return request.build_absolute_uri(request.path) + "?" + query.urlencode()


def _paginated(request: HttpRequest, *, count: int, page: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """DRF's limit/offset page: absolute ``next`` and ``previous`` links, null at the ends."""
    nxt = _page_url(request, limit=limit, offset=offset + limit) if offset + limit < count else None
    prev = _page_url(request, limit=limit, offset=max(0, offset - limit)) if offset > 0 else None
    return {"count": count, "next": nxt, "previous": prev, "results": page}


def _not_found(kind: str) -> tuple[int, Any]:
    return 404, {"detail": f"No {kind} matches the given query."}  # e.g. "No RequestGroup matches ..."


def _int_param(request: HttpRequest, name: str, default: int, cap: int) -> int:
    try:
        return max(0, min(int(request.GET.get(name, default)), cap))
    except ValueError:
        return default


# -- portal endpoints --------------------------------------------------------------------------


@sim_api("GET", "POST")
def requestgroups(request: HttpRequest, body: Any) -> tuple[int, Any]:
    if request.method == "POST":
        try:
            group = services.sim_request_group_submit(payload=body)
        except services.SimValidationError as exc:
            return 400, exc.errors
        return 201, group_json(group)
    groups = SimRequestGroup.objects.prefetch_related("requests").order_by("-id")
    if request.GET.get("name"):
        groups = groups.filter(name__icontains=request.GET["name"])
    if request.GET.get("state"):
        groups = groups.filter(state=request.GET["state"])
    limit, offset = max(1, _int_param(request, "limit", 10, 1000)), _int_param(request, "offset", 0, 10**9)
    count = groups.count()
    page = [group_json(g) for g in groups[offset : offset + limit]]
    return 200, _paginated(request, count=count, page=page, limit=limit, offset=offset)


@sim_api("POST")
def requestgroup_validate(request: HttpRequest, body: Any) -> tuple[int, Any]:
    errors, scheduled = services.sim_request_group_validate(payload=body)
    durations = {"requests": [{"duration": round(checked.duration_s)} for checked, _ in scheduled]}
    return 200, {"request_durations": durations, "errors": errors}


@sim_api("GET")
def requestgroup_detail(request: HttpRequest, body: Any, pk: int) -> tuple[int, Any]:
    group = SimRequestGroup.objects.prefetch_related("requests").filter(pk=pk).first()
    return (200, group_json(group)) if group else _not_found("RequestGroup")


@sim_api("POST")
def requestgroup_cancel(request: HttpRequest, body: Any, pk: int) -> tuple[int, Any]:
    if not SimRequestGroup.objects.filter(pk=pk).exists():
        return _not_found("RequestGroup")
    try:
        group = services.sim_request_group_cancel(group_id=pk)
    except ValueError as exc:
        return 400, {"errors": [str(exc)]}
    return 200, group_json(SimRequestGroup.objects.prefetch_related("requests").get(pk=group.pk))


@sim_api("GET")
def request_detail(request: HttpRequest, body: Any, pk: int) -> tuple[int, Any]:
    found = SimRequest.objects.filter(pk=pk).first()
    return (200, request_json(found)) if found else _not_found("Request")


@sim_api("GET")
def request_observations(request: HttpRequest, body: Any, pk: int) -> tuple[int, Any]:
    if not SimRequest.objects.filter(pk=pk).exists():
        return _not_found("Request")
    observations = SimObservation.objects.filter(request_id=pk).select_related("facility__site", "request").order_by("id")
    return 200, [observation_json(o) for o in observations]


@sim_api("GET")
def telescope_states(request: HttpRequest, body: Any) -> tuple[int, Any]:
    now = services.sim_now()
    out: dict[str, list[dict[str, Any]]] = {}
    for facility in Facility.objects.filter(simulated=True, enabled=True).select_related("site"):
        state = services.telescope_state_now(facility=facility, now=now)
        out[facility.location_key] = [
            {
                "telescope": facility.location_key,
                "event_type": state.event_type,
                "event_reason": state.reason,
                "start": _iso(state.since),
                "end": _iso(now + timedelta(minutes=5)),
            }
        ]
    return 200, out


@sim_api("GET")
def instruments(request: HttpRequest, body: Any) -> tuple[int, Any]:
    """The portal's instrument types, as ``api/instruments/`` gives them (one entry per type)."""
    out: dict[str, Any] = {}
    for instrument in Instrument.objects.filter(facility__simulated=True, facility__enabled=True).select_related("facility"):
        kind = instrument.portal_instrument_type
        if kind in out:
            continue
        group = (instrument.optical_element_group or "filter") + "s"
        acquisition = ["WCS", "BRIGHTEST"] if instrument.optical_element_group == "slit" else ["OFF"]
        out[kind] = {
            "type": "SPECTRA" if instrument.kind == "spectra" else "IMAGE",
            "class": instrument.facility.telescope_class,
            "name": kind,
            "optical_elements": {
                group: [{"name": code, "code": code, "schedulable": True, "default": i == 0}
                        for i, code in enumerate(instrument.filters)],
                **{f"{key}s": [{"name": value, "code": value, "schedulable": True, "default": True}]
                   for key, value in (instrument.fixed_optical_elements or {}).items()},
            },
            "modes": {
                "readout": {
                    "type": "readout",
                    "modes": [{"name": m, "code": m, "overhead": instrument.readout_s, "schedulable": True,
                               "validation_schema": {}} for m in instrument.readout_modes],
                    "default": instrument.default_readout_mode,
                },
                "acquisition": {"type": "acquisition", "modes": [{"name": m, "code": m, "schedulable": True,
                                                                   "validation_schema": {}} for m in acquisition],
                                "default": acquisition[0]},
                "guiding": {"type": "guiding", "modes": [{"name": m, "code": m, "schedulable": True,
                                                           "validation_schema": {}} for m in ("ON", "OFF")],
                            "default": instrument.guiding_mode},
            },
            "default_acceptability_threshold": 90,
            "camera_type": {"pixel_scale": instrument.pixel_scale},
        }
    return 200, out


# -- control endpoints -------------------------------------------------------------------------


def _parse_now(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("now must carry a time zone (e.g. 'Z')")
    return moment


@sim_api("GET", faults=False)
def clock(request: HttpRequest, body: Any) -> tuple[int, Any]:
    return 200, {"now": _iso(services.sim_now())}


@sim_api("POST", faults=False)
def tick(request: HttpRequest, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict):
        return 400, {"detail": "expected a JSON object"}
    now: datetime | None = None
    try:
        if body.get("now") is not None:
            now = _parse_now(body["now"])
        elif body.get("advance_s") is not None:
            now = services.sim_now() + timedelta(seconds=float(body["advance_s"]))
    except (TypeError, ValueError, OverflowError) as exc:
        return 400, {"detail": f"bad now/advance_s: {exc}"}
    result = services.sim_tick(now=now)
    return 200, {"now": _iso(result.now), "completed": result.completed, "failed": result.failed}


@sim_api("GET", "POST", faults=False)
def weather(request: HttpRequest, body: Any) -> tuple[int, Any]:
    now = services.sim_now()
    if request.method == "POST":
        if not isinstance(body, dict):
            return 400, {"detail": "expected a JSON object"}
        site = Site.objects.filter(code=body.get("site")).first()
        if site is None:
            return 400, {"site": [f"unknown site {body.get('site')!r}"]}
        try:
            services.sim_weather_set(site=site, state=str(body.get("state")), hours=float(body.get("hours", 24.0)), now=now)
        except (TypeError, ValueError, OverflowError) as exc:
            return 400, {"state": [str(exc)]}
    sites = {}
    for site in Site.objects.all():
        current = services.site_weather_at(site=site, at=now)
        sites[site.code] = {"state": current.state, "reason": current.reason}
    return 200, {"now": _iso(now), "sites": sites}


@sim_api("POST", faults=False)
def downtime(request: HttpRequest, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict):
        return 400, {"detail": "expected a JSON object"}
    facility = Facility.objects.filter(code=body.get("facility")).first()
    if facility is None:
        return 400, {"facility": [f"unknown facility {body.get('facility')!r}"]}
    try:
        hours = float(body["hours"]) if body.get("hours") is not None else None
        made = services.sim_downtime_inject(facility=facility, reason=str(body.get("reason", "")), hours=hours)
    except (TypeError, ValueError, OverflowError) as exc:
        return 400, {"hours": [str(exc)]}
    return 201, {"facility": facility.code, "reason": made.reason, "start": _iso(made.start), "end": _iso(made.end)}


@sim_api("POST", faults=False)
def downtime_clear(request: HttpRequest, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict):
        return 400, {"detail": "expected a JSON object"}
    facility = Facility.objects.filter(code=body.get("facility")).first()
    if facility is None:
        return 400, {"facility": [f"unknown facility {body.get('facility')!r}"]}
    return 200, {"facility": facility.code, "cleared": services.sim_downtime_clear(facility=facility)}


@sim_api("POST", faults=False)
def faults(request: HttpRequest, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or body.get("kind") not in SimFault.Kind.values:
        return 400, {"kind": [f"kind must be one of {', '.join(SimFault.Kind.values)}"]}
    try:
        count, delay = int(body.get("count", 1)), float(body.get("delay_s", 0.0))
        if count < 1 or not 0.0 <= delay <= 30.0:
            raise ValueError
    except (TypeError, ValueError):
        return 400, {"count": ["count must be >= 1 and delay_s in [0, 30]"]}
    fault = SimFault.objects.create(
        kind=body["kind"], method=str(body.get("method", "")).upper()[:8], path_prefix=str(body.get("path", ""))[:200],
        remaining=count, delay_s=delay,
    )
    return 201, {"id": fault.pk, "kind": fault.kind, "remaining": fault.remaining}


@sim_api("POST", faults=False)
def faults_clear(request: HttpRequest, body: Any) -> tuple[int, Any]:
    cleared = SimFault.objects.filter(remaining__gt=0).update(remaining=0)
    return 200, {"cleared": cleared}
