"""Adapters with the exact signatures other apps' hooks call, each ending in :func:`notify_event`.

Wire them by dotted path (see the README's configuration section):

* scheduling: ``BATON_SCHEDULING_HOOKS['notify'] = "notifications.adapters.scheduling_notify"``
  (env ``BATON_HOOK_NOTIFY``);
* candidates: ``BATON_CANDIDATES_MATCH_HOOK = "notifications.adapters.candidates_matches_notify"``;
  :func:`candidates_notify` is the single-event form;
* policies: ``policies.hooks.notify(event, teams, payload, now=...)`` delegating to
  :func:`policies_notify`;
* observatories (facility status changes): :func:`facility_notify`.

Scheduling events are renamed to the policy events teams write rules for:
``request.copy_failed`` (a copy failed at a site; the request is re-planned) is
``request.replanned``; ``request.planned`` and ``request.visit_completed`` are
internal steps and notify nobody. Urgency comes from ``URGENT_EVENTS``
(default: ``request.failed`` and ``request.expired``, which need a person to act
before the event is lost; ``request.completed`` is good news that can wait for
the morning).

Hooks called inside a producer's transaction run in a savepoint and never raise:
a notification problem is logged, and the producer's state change stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.auth.models import Group
from django.db import transaction

from .models import Notification
from .services import EventSpec, notify_event, notify_events

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCHEDULING_EVENTS: dict[str, str | None] = {
    "request.planned": None,
    "request.dispatched": "request.dispatched",
    "request.copy_failed": "request.replanned",
    "request.visit_completed": None,
    "request.completed": "request.completed",
    "request.failed": "request.failed",
    "request.expired": "request.expired",
    "request.replanned": "request.replanned",
}
FACILITY_DOWN_STATES = frozenset({"downtime"})
FACILITY_UP_STATES = frozenset({"available"})


def _safely(what: str, call: Callable[[], list[T]]) -> list[T]:
    """Run ``call`` in a savepoint; log and swallow any error so the caller's transaction stands."""
    try:
        with transaction.atomic():
            return call()
    except Exception:
        logger.exception("notifications: %s failed; nothing was notified", what)
        return []


# --- scheduling --------------------------------------------------------------------------------


def _scheduling_key(event: str, request: Any, payload: Mapping[str, Any]) -> str | None:
    from observatories.scheduling.models import Dispatch, DispatchState, RequestTransition

    if event in ("request.completed", "request.failed", "request.expired"):
        return f"{event}:{request.pk}"  # terminal: once per request
    if event == "request.dispatched":
        last = (RequestTransition.objects.filter(request_id=request.pk, to_state="dispatched")
                .order_by("-pk").values_list("pk", flat=True).first())
        return f"{event}:{request.pk}:{last}" if last else None
    if event == "request.replanned" and payload.get("facility"):
        failed = (Dispatch.objects.filter(request_id=request.pk, facility__code=payload["facility"],
                                          state__in=[DispatchState.FAILED_WEATHER, DispatchState.FAILED_OTHER,
                                                     DispatchState.EXPIRED])
                  .order_by("-pk").values_list("pk", flat=True).first())
        return f"{event}:dispatch:{failed}" if failed else None
    return None


def scheduling_notify(*, event: str, request: Any, **payload: Any) -> list[Notification]:
    """The scheduler's notify hook (``observatories/scheduling/hooks.py``): a request's lifecycle event to its team."""
    mapped = SCHEDULING_EVENTS.get(event, event)
    if mapped is None:
        return []

    def run() -> list[Notification]:
        target = request.target
        body: dict[str, Any] = {
            **{k: v for k, v in payload.items() if k not in ("request", "request_id", "target_id")},
            "request_id": request.pk,
            "target_id": request.target_id,
            "target_name": getattr(target, "name", str(target)),
            "priority": request.priority,
            "telescope_class": request.telescope_class,
            "request_state": request.state,
            # The door checks the recipient may see this request (its team's sharing rule for requests).
            "request": {"team_id": request.team_id, "created_at": request.created_at},
        }
        return notify_event(event=mapped, teams=[request.team], payload=body,
                            dedupe_key=_scheduling_key(mapped, request, body))

    return _safely(f"scheduling event {event} of request {getattr(request, 'pk', '?')}", run)


# --- policies ----------------------------------------------------------------------------------


def policies_notify(event: str, teams: Iterable[Group], payload: Mapping[str, Any], *,
                    now: datetime | None = None) -> list[Notification]:
    """The policies hook's signature (``policies.hooks.notify``): claims, policy changes, breaches, allocations."""
    teams = list(teams)

    def run() -> list[Notification]:
        body = dict(payload)
        if "team_id" in body and "team_name" not in body:
            group = next((g for g in teams if getattr(g, "pk", None) == body["team_id"]), None)
            body["team_name"] = group.name if group is not None else ""
        return notify_event(event=event, teams=teams, payload=body, urgent=body.get("urgent") is True, now=now)

    return _safely(f"policies event {event}", run)


# --- candidates ----------------------------------------------------------------------------------


def candidates_notify(*, event: str, team: Group | None, payload: Mapping[str, Any],
                      users: Iterable[Any] = ()) -> list[Notification]:
    """One candidate event to a team (or personally to ``users``); a candidate reaches a person once."""
    key = f"{event}:{payload['candidate_id']}" if "candidate_id" in payload else None
    return notify_event(event=event, teams=[team] if team is not None else [], users=users, payload=payload, dedupe_key=key)


def _match_payload(match: Any) -> dict[str, Any]:
    candidate = match.candidate
    top = max(candidate.classifications or [], key=lambda c: c.get("score") or 0, default=None)
    return {
        "candidate_id": candidate.pk,
        "target_id": match.target_id,
        "target_name": match.target.name,
        "broker": candidate.broker,
        "alert_id": candidate.alert_id,
        "object_id": candidate.object_id,
        "band": candidate.band,
        "magnitude": round(candidate.mag, 3) if candidate.mag is not None else None,
        "rise_rate": round(candidate.rise_rate, 3) if candidate.rise_rate is not None else None,
        "classification": top.get("class") if top else None,
        "score": top.get("score") if top else None,
        "time": candidate.time,
        "ra": round(candidate.ra, 6),
        "dec": round(candidate.dec, 6),
        "match": "filter" if match.filter_id else "region",
        "match_name": match.filter.name if match.filter_id else match.region.name if match.region_id else "",
    }


def candidates_matches_notify(*, match_ids: list[int], now: datetime | None = None) -> list[Notification]:
    """``BATON_CANDIDATES_MATCH_HOOK``: new filter and watch-region matches, as ``candidate.new``.

    All matches of one call are announced in one transaction, so a burst folds into one
    digest per person (the rate limit) instead of a message per alert. Two filters of one
    team matching the same alert notify once. Runs in the candidates' Celery task: errors
    propagate there (and are retried), nothing is swallowed.
    """
    from candidates.models import Match

    matches = (Match.objects.filter(pk__in=match_ids).select_related("candidate", "target", "filter", "region", "team", "owner")
               .order_by("pk"))
    specs = []
    for match in matches:
        payload = _match_payload(match)
        teams: tuple[Group, ...] = (match.team,) if match.team is not None else ()
        specs.append(EventSpec(event="candidate.new", payload=payload, teams=teams,
                               users=(match.owner,) if match.owner_id else (),
                               dedupe_key=f"candidate.new:{match.candidate_id}"))
    return notify_events(events=specs, now=now)


# --- data --------------------------------------------------------------------------------------


def data_notify(*, team: Group, target: Any, data: Iterable[Any], **payload: Any) -> list[Notification]:
    """New data on a target (``data.new``): each datum is referenced, so the door vets who may hear of it."""
    data = list(data)
    refs = [{"model": d._meta.label_lower, "id": d.pk} for d in data]

    def run() -> list[Notification]:
        body = {**payload, "target_id": target.pk, "target_name": target.name, "count": len(refs), "data": refs}
        key = "data.new:" + ",".join(f"{r['model']}:{r['id']}" for r in refs[:20]) if refs else None
        return notify_event(event="data.new", teams=[team], payload=body, dedupe_key=key[:200] if key else None)

    return _safely(f"data on target {getattr(target, 'pk', '?')}", run)


# --- facilities --------------------------------------------------------------------------------


def facility_notify(*, facility: Any, old_state: str, new_state: str, reason: str = "", **extra: Any) -> list[Notification]:
    """A facility went down (``downtime``) or came back (``available`` after downtime).

    Told to every team with live dispatches (queued, submitted, pending, in progress) at
    the facility, each with its own requests there; teams with nothing there are not
    bothered. Weather closures and unknown (stale) states are routine and notify nobody:
    the scheduler re-plans around them.
    """
    old, new = str(old_state), str(new_state)
    if new in FACILITY_DOWN_STATES and old not in FACILITY_DOWN_STATES:
        event = "facility.down"
    elif new in FACILITY_UP_STATES and old in FACILITY_DOWN_STATES:
        event = "facility.up"
    else:
        return []

    def run() -> list[Notification]:
        from observatories.models import FacilityStatus
        from observatories.scheduling.models import DISPATCH_LIVE, Dispatch

        live = (Dispatch.objects.filter(facility=facility, state__in=list(DISPATCH_LIVE))
                .values_list("request__team_id", "request_id").order_by("request_id"))
        by_team: dict[int, list[int]] = {}
        for team_id, request_id in live:
            by_team.setdefault(team_id, [])
            if request_id not in by_team[team_id]:
                by_team[team_id].append(request_id)
        status = FacilityStatus.objects.filter(facility=facility).order_by("-fetched_at", "-pk").values_list("pk", flat=True).first()
        site = getattr(facility, "site", None)
        created: list[Notification] = []
        for group in Group.objects.filter(pk__in=list(by_team)).order_by("pk"):
            body = {"facility": facility.code, "facility_name": facility.name, "site": getattr(site, "code", ""),
                    "old_state": old, "new_state": new, "reason": reason or "", "request_ids": by_team[group.pk],
                    "live_requests": len(by_team[group.pk])}
            key = f"{event}:{facility.code}:{status}" if status else None
            created += notify_event(event=event, teams=[group], payload=body, dedupe_key=key)
        return created

    return _safely(f"facility {getattr(facility, 'code', facility)} {old}->{new}", run)
