"""Drills: create, start, step, finish, report, acknowledge, re-run and remove.

A drill runs as a chain of Celery tasks, one per step of simulated time (``step_s``), paced by
``speed``. Each step runs inside the drill's sandbox (:mod:`tomsite.sandbox`): the database
connection uses the drill's schema (:mod:`drills.schema`), the process's clock is the step's
simulated time (``time-machine``, frozen for the step), and Celery tasks the step causes run
at once in the same process (``task_always_eager``), so every step is one deterministic unit
and the same seed gives the same drill. In a step:

1. scripted faults that begin are applied to the simulated network (clouds, downtime), and the
   facility status feed is read again over HTTP; ``slack_down`` is active while it lasts;
2. the scenario's alerts due by now are pushed as one batch through the candidate pipeline
   (the team's filters, watch regions and trigger rules; a fired rule makes a request);
3. what the beat does in real life: the simulator decides due observations, live copies are
   polled (over HTTP), the reconciler expires windows and re-plans, the notification outbox
   and data releases run.

Requests go to simulated facilities only: the drill's schema has no other facility, and the
facility adapter refuses a non-simulated one while a sandbox is active.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from tomsite import sandbox

from . import scenarios
from .models import Drill, DrillAck, DrillState
from .schema import schema_create, schema_drop

logger = logging.getLogger(__name__)


class DrillRefused(Exception):
    """The caller may not do this to the drill (not a team admin, wrong state); the message says why."""


# --------------------------------------------------------------------------------------
# Who may do what


def _team(group: Group) -> Any:
    from policies.models import Team

    team = Team.objects.filter(group=group).first()
    if team is None:
        raise DrillRefused(f"{group} is not a Baton team")
    return team


def drill_admin_check(*, user: Any, team: Group) -> None:
    """Only a team's admins start, re-run and remove its drills."""
    from policies.selectors import team_is_admin

    if not team_is_admin(user=user, team=_team(team)):
        raise DrillRefused(f"only admins of {team} run its drills")


def drills_visible_to(*, user: Any) -> Any:
    """The drills of the user's teams (a drill's report is the team's business)."""
    from policies.selectors import team_group_ids_of

    return Drill.objects.filter(team_id__in=team_group_ids_of(user=user)).select_related("team", "created_by")


# --------------------------------------------------------------------------------------
# Create, start, re-run, remove


def drill_create(
    *, team: Group, user: Any, name: str, scenario: Any, seed: int = 1, scheduled_for: datetime | None = None,
    speed: float = 0.0, rerun_of: Drill | None = None,
) -> Drill:
    """Validate and record a drill; it starts at ``scheduled_for`` (default now) on the worker.

    Raises DrillRefused (not an admin) or ScenarioInvalid (the message names the field).
    """
    from observatories.models import Facility, Site

    drill_admin_check(user=user, team=team)
    now = timezone.now()
    when = scheduled_for or now
    if timezone.is_naive(when):
        raise scenarios.ScenarioInvalid("scheduled_for: give a time zone")
    if not name or len(name) > 100:
        raise scenarios.ScenarioInvalid("name: must be 1 to 100 characters")
    if not (0 <= seed < 2**31):
        raise scenarios.ScenarioInvalid("seed: must be between 0 and 2147483647")
    if not (0.0 <= speed <= 1e6) or math.isnan(speed):
        raise scenarios.ScenarioInvalid("speed: must be between 0 (as fast as possible) and 1e6")
    clean = scenarios.scenario_validate(scenario, default_start=when.replace(microsecond=0))
    sites = set(Site.objects.values_list("code", flat=True))
    simulated = set(Facility.objects.filter(simulated=True, enabled=True).values_list("code", flat=True))
    for i, fault in enumerate(clean["faults"]):
        if fault["kind"] == "clouds" and fault["site"] not in sites:
            raise scenarios.ScenarioInvalid(f"faults[{i}].site: no site {fault['site']!r}")
        if fault["kind"] == "downtime" and fault["facility"] not in simulated:
            raise scenarios.ScenarioInvalid(f"faults[{i}].facility: no simulated facility {fault['facility']!r}")
    step_s = int(round(clean["step_minutes"] * 60))
    steps = max(1, math.ceil(clean["duration_hours"] * 3600 / step_s))
    with transaction.atomic():
        drill = Drill.objects.create(
            team=team, name=name.strip(), scenario=clean, seed=seed, scheduled_for=when,
            sim_start=datetime.fromisoformat(clean["sim_start"]), step_s=step_s, steps=steps, speed=speed,
            created_by=user if getattr(user, "pk", None) else None, rerun_of=rerun_of,
        )
        if when <= now:
            from .tasks import drill_start_task

            drill_start_task.delay_on_commit(drill.pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    return drill


def drill_rerun(*, drill: Drill, user: Any) -> Drill:
    """The same scenario, simulated start and seed again: the same result."""
    return drill_create(team=drill.team, user=user, name=drill.name, scenario=drill.scenario, seed=drill.seed,
                        speed=drill.speed, rerun_of=drill)


def drill_remove(*, drill: Drill, user: Any) -> None:
    """Remove everything the drill made (its schema) and the drill itself, in one action."""
    drill_admin_check(user=user, team=drill.team)
    schema = drill.schema
    with transaction.atomic():
        Drill.objects.filter(pk=drill.pk).delete()
        schema_drop(schema=schema)


def drills_start_due(*, now: datetime | None = None) -> list[int]:
    """Beat: start the scheduled drills whose time has come."""
    from .tasks import drill_start_task

    now = now or timezone.now()
    due = list(Drill.objects.filter(state=DrillState.SCHEDULED, scheduled_for__lte=now).values_list("pk", flat=True))
    for pk in due:
        drill_start_task.delay(pk)
    return due


def drill_start(*, drill_id: int) -> Drill | None:
    """Make the drill's schema and enqueue its first step (once: a started drill is left alone)."""
    from .tasks import drill_step_task

    with transaction.atomic():
        drill = Drill.objects.select_for_update().filter(pk=drill_id).first()
        if drill is None or drill.state != DrillState.SCHEDULED:
            return drill
        try:
            with transaction.atomic():
                schema_drop(schema=drill.schema)  # only a stale one can exist (e.g. a restored database)
                schema_create(schema=drill.schema, team_id=drill.team_id)
        except Exception as exc:
            logger.exception("drill %s: could not make its schema", drill.pk)
            drill.state, drill.error, drill.finished_at = DrillState.FAILED, f"set-up failed: {exc}", timezone.now()
            drill.save(update_fields=["state", "error", "finished_at"])
            return drill
        drill.state, drill.started_at = DrillState.RUNNING, timezone.now()
        drill.save(update_fields=["state", "started_at"])
        drill_step_task.delay_on_commit(drill.pk, 0)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    return drill


# --------------------------------------------------------------------------------------
# Steps


@contextmanager
def _eager() -> Iterator[None]:
    """Tasks enqueued inside run at once, in this process (inside the drill's sandbox and time)."""
    from tomsite.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = saved


@contextmanager
def inside(drill: Drill, *, now: datetime | None = None, faults: set[str] | None = None) -> Iterator[sandbox.Sandbox]:
    """The drill's sandbox (its schema; its simulated ``now`` frozen on this process's clock, if given)."""
    import time_machine

    box = sandbox.Sandbox(drill_id=drill.pk, schema=drill.schema, name=drill.name, now=now, faults=faults or set())
    with sandbox.running(box):
        if now is None:
            yield box
            return
        with time_machine.travel(now, tick=False), _eager():
            yield box


def _facilities_refresh(codes: set[str] | None = None) -> None:
    from observatories.models import Facility
    from observatories.services import facility_status_refresh

    facilities = Facility.objects.filter(enabled=True, simulated=True).select_related("site")
    if codes is not None:
        facilities = facilities.filter(code__in=sorted(codes))
    for facility in facilities:
        facility_status_refresh(facility=facility)


def _fault_facilities(fault: scenarios.Fault) -> set[str]:
    from observatories.models import Facility

    if fault.kind == "downtime":
        return {fault.facility}
    if fault.kind == "clouds":
        return set(Facility.objects.filter(site__code=fault.site).values_list("code", flat=True))
    return set()


def _apply_faults(drill: Drill, *, now: datetime, since: datetime | None) -> None:
    from observatories.models import Facility, Site
    from observatories.simnet.services import sim_downtime_inject, sim_weather_set

    touched: set[str] = set()
    for fault in scenarios.scenario_faults(drill.scenario):
        begins = fault.at <= now and (since is None or fault.at > since)
        ends = since is not None and since < fault.end <= now
        if begins and fault.end > now:
            hours = (fault.end - now).total_seconds() / 3600.0
            if fault.kind == "clouds":
                sim_weather_set(site=Site.objects.get(code=fault.site), state="cloudy", hours=hours, now=now)
            elif fault.kind == "downtime":
                facility = Facility.objects.filter(code=fault.facility).first()
                if facility is not None:
                    sim_downtime_inject(facility=facility, reason=f"drill: {fault.reason}", hours=hours, now=now)
        if begins or ends:
            touched |= _fault_facilities(fault)
    if touched:
        _facilities_refresh(touched)


def _feed_alerts(drill: Drill, *, now: datetime, since: datetime | None) -> int:
    from candidates.services.batches import batch_receive

    due = [
        a for a in scenarios.scenario_alerts(drill.scenario, seed=drill.seed)
        if datetime.fromisoformat(a["time"].replace("Z", "+00:00")) <= now
        and (since is None or datetime.fromisoformat(a["time"].replace("Z", "+00:00")) > since)
    ]
    if due:
        batch_receive(body=json.dumps({"alerts": due}).encode(), content_type="application/json", now=now)
    return len(due)


def _run_beat(*, now: datetime) -> None:
    """What the beat schedule does in real life, once, at the drill's now."""
    from notifications.services import outbox_due
    from observatories.portal.client import PortalUnavailable
    from observatories.scheduling.models import Dispatch, DispatchState
    from observatories.scheduling.services.dispatch import dispatch_poll
    from observatories.scheduling.services.reconcile import scheduling_reconcile
    from observatories.simnet.services import sim_tick
    from policies.services import data_release_due

    sim_tick(now=now)
    live = Dispatch.objects.filter(state__in=[DispatchState.SUBMITTED, DispatchState.PENDING, DispatchState.IN_PROGRESS])
    for pk in live.order_by("pk").values_list("pk", flat=True):
        try:
            dispatch_poll(dispatch_id=pk, now=now)
        except PortalUnavailable:
            logger.info("drill: dispatch %s could not be polled this step", pk)
    scheduling_reconcile(now=now)
    data_release_due(now=now)
    outbox_due()


def drill_step(*, drill_id: int, step: int) -> Drill | None:
    """Run step ``step`` of a running drill (once), then enqueue the next or finish."""
    from .tasks import drill_finish_task, drill_step_task

    drill = Drill.objects.filter(pk=drill_id).first()
    if drill is None or drill.state != DrillState.RUNNING or drill.step != step:
        return drill
    now = drill.sim_start + timedelta(seconds=step * drill.step_s)
    since = None if step == 0 else now - timedelta(seconds=drill.step_s)
    wall = timezone.now()
    faults = {f.kind for f in scenarios.scenario_faults(drill.scenario) if f.kind == "slack_down" and f.active(now)}
    try:
        with inside(drill, now=now, faults=faults):
            if step == 0:
                _facilities_refresh()
            _apply_faults(drill, now=now, since=since)
            _feed_alerts(drill, now=now, since=since)
            _run_beat(now=now)
    except Exception as exc:
        logger.exception("drill %s failed at step %s", drill.pk, step)
        Drill.objects.filter(pk=drill.pk).update(state=DrillState.FAILED, error=f"step {step}: {exc!r}"[:2000],
                                                 finished_at=timezone.now())
        return Drill.objects.filter(pk=drill.pk).first()
    updated = Drill.objects.filter(pk=drill.pk, step=step, state=DrillState.RUNNING).update(
        step=step + 1, timeline=[*drill.timeline, [now.isoformat(), wall.isoformat()]],
    )
    if not updated:  # removed, or another worker ran this step
        return Drill.objects.filter(pk=drill.pk).first()
    if step + 1 < drill.steps:
        delay = drill.step_s / drill.speed if drill.speed > 0 else 0
        transaction.on_commit(lambda: drill_step_task.apply_async((drill.pk, step + 1), countdown=delay))
    else:
        transaction.on_commit(lambda: drill_finish_task.delay(drill.pk))
    return Drill.objects.filter(pk=drill.pk).first()


def drill_finish(*, drill_id: int) -> Drill | None:
    """Write the report of a drill whose steps are all done."""
    drill = Drill.objects.filter(pk=drill_id).first()
    if drill is None or drill.state != DrillState.RUNNING or drill.step < drill.steps:
        return drill
    report = drill_report(drill=drill)
    Drill.objects.filter(pk=drill.pk, state=DrillState.RUNNING).update(
        state=DrillState.COMPLETED, report=report, finished_at=timezone.now()
    )
    return Drill.objects.get(pk=drill.pk)


# --------------------------------------------------------------------------------------
# Acknowledgements


def drill_notification(*, drill: Drill, notification_id: int) -> Any:
    """One of the drill's notifications (read from its schema), or None."""
    from notifications.models import Notification

    if not sandbox.schema_exists(drill.schema):
        return None
    with inside(drill):
        return Notification.objects.select_related("recipient").filter(pk=notification_id).first()


def drill_ack(*, drill: Drill, notification_id: int, user: Any) -> DrillAck:
    """``user`` (a member of the drill's team) acknowledges one of the drill's notifications (idempotent)."""
    from policies.selectors import team_group_ids_of

    if drill.team_id not in team_group_ids_of(user=user):
        raise DrillRefused("only the drill's team acknowledges its notifications")
    if drill_notification(drill=drill, notification_id=notification_id) is None:
        raise DrillRefused(f"drill {drill.pk} sent no notification {notification_id}")
    ack, _ = DrillAck.objects.get_or_create(drill=drill, notification_id=notification_id, user=user)
    return ack


# --------------------------------------------------------------------------------------
# The report


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 1) if start and end else None


def _wall_of(drill: Drill, sim_time: datetime | None) -> datetime | None:
    """The wall-clock time at which the drill's clock showed ``sim_time`` (its step's start)."""
    if sim_time is None or not drill.timeline:
        return None
    index = int((sim_time - drill.sim_start).total_seconds() // drill.step_s)
    index = min(max(index, 0), len(drill.timeline) - 1)
    return datetime.fromisoformat(drill.timeline[index][1])


def drill_report(*, drill: Drill) -> dict[str, Any]:
    """The drill's report (see the drill page): latencies, goals, acknowledgements, policy decisions, faults."""
    acks = list(DrillAck.objects.filter(drill=drill).select_related("user").order_by("acked_at"))
    if not sandbox.schema_exists(drill.schema):
        return dict(drill.report or {})
    with inside(drill):
        report = _report_inside(drill, acks)
    return report


def _report_inside(drill: Drill, acks: list[DrillAck]) -> dict[str, Any]:
    from django.db.models import Count, Min

    from candidates.models import Candidate, TriggerFiring
    from notifications.models import Notification
    from observatories.scheduling.models import Dispatch, DispatchTransition, ObservingRequest, RequestState
    from policies.models import PolicyDecision

    alerts_sent = len(scenarios.scenario_alerts(drill.scenario, seed=drill.seed))
    first_alert = Candidate.objects.aggregate(t=Min("received_at"))["t"]
    first_request = ObservingRequest.objects.aggregate(t=Min("created_at"))["t"]
    first_dispatch = Dispatch.objects.aggregate(t=Min("submitted_at"))["t"]
    first_observation = DispatchTransition.objects.filter(to_state="completed").aggregate(t=Min("at"))["t"]
    requests = list(ObservingRequest.objects.select_related("target").order_by("created_at", "pk"))
    by_state = {row["state"]: row["n"] for row in ObservingRequest.objects.values("state").annotate(n=Count("pk"))}
    completed = by_state.get(RequestState.COMPLETED, 0)

    events = []
    for event in drill.scenario["events"]:
        object_id = f"DRILL-{event['name']}"
        target_ids = set(Candidate.objects.filter(object_id=object_id).values_list("target_id", flat=True))
        mine = [r for r in requests if r.target_id in target_ids]
        first_seen = Candidate.objects.filter(object_id=object_id).aggregate(t=Min("received_at"))["t"]
        observed = DispatchTransition.objects.filter(dispatch__request__in=mine, to_state="completed").aggregate(t=Min("at"))["t"]
        events.append({
            "name": event["name"], "kind": event["kind"],
            "alerts": Candidate.objects.filter(object_id=object_id).count(),
            "first_alert_at": _iso(first_seen),
            "firings": TriggerFiring.objects.filter(target_id__in=target_ids).count(),
            "requests": [{"id": r.pk, "state": r.state, "plan_outcome": r.plan_outcome, "created_at": _iso(r.created_at)}
                         for r in mine],
            "first_observation_at": _iso(observed),
            "alert_to_observation_s": _seconds(first_seen, observed),
            "goal_met": any(r.state == RequestState.COMPLETED for r in mine),
        })

    dispatches = list(Dispatch.objects.select_related("facility__site").order_by("pk"))
    acks_by: dict[int, list[DrillAck]] = {}
    for ack in acks:
        acks_by.setdefault(ack.notification_id, []).append(ack)
    notifications = []
    for n in Notification.objects.filter(digest__isnull=True).select_related("recipient").order_by("created_at", "pk"):
        sent_wall = _wall_of(drill, n.sent_at)
        notifications.append({
            "id": n.pk, "event": n.event, "recipient": n.recipient.get_username(), "channel": n.channel,
            "status": n.status, "attempts": n.attempts, "last_error": n.last_error,
            "created_at": _iso(n.created_at), "sent_at": _iso(n.sent_at), "digest": bool(n.digest_kind),
            "acks": [{"user": a.user.get_username(), "at": _iso(a.acked_at),
                      "after_s": _seconds(sent_wall, a.acked_at)} for a in acks_by.get(n.pk, [])],
        })
    decisions = [
        {"at": _iso(d.at), "action": d.action, "decision": d.decision, "reason": d.reason,
         "object": f"{d.object_type} {d.object_id}".strip(),
         "policy_version": d.policy_version.number if d.policy_version_id and d.policy_version else None}
        for d in PolicyDecision.objects.select_related("policy_version").order_by("at", "pk")
    ]
    faults = [{"kind": f.kind, "at": _iso(f.at), "end": _iso(f.end), "site": f.site, "facility": f.facility}
              for f in scenarios.scenario_faults(drill.scenario)]
    return {
        "drill": {"id": drill.pk, "name": drill.name, "team": drill.team.name, "seed": drill.seed,
                  "sim_start": _iso(drill.sim_start), "steps": drill.steps, "step_s": drill.step_s},
        "alerts": {"sent": alerts_sent, "stored": Candidate.objects.count()},
        "first": {"alert": _iso(first_alert), "request": _iso(first_request), "dispatch": _iso(first_dispatch),
                  "observation": _iso(first_observation)},
        "latency_s": {"alert_to_request": _seconds(first_alert, first_request),
                      "alert_to_dispatch": _seconds(first_alert, first_dispatch),
                      "alert_to_observation": _seconds(first_alert, first_observation)},
        "goals": {"requests": len(requests), "completed": completed, "by_state": by_state,
                  "fraction_completed": round(completed / len(requests), 4) if requests else None},
        "events": events,
        "dispatches": [{"id": d.pk, "request": d.request_id, "facility": d.facility.code, "site": d.facility.site.code,
                        "simulated": d.facility.simulated, "state": d.state, "reason": d.reason,
                        "window_start": _iso(d.window_start), "submitted_at": _iso(d.submitted_at),
                        "finished_at": _iso(d.finished_at)} for d in dispatches],
        "non_simulated_dispatches": sum(1 for d in dispatches if not d.facility.simulated),
        "notifications": notifications,
        "acknowledged": sum(1 for n in notifications if n["acks"]),
        "policy_decisions": decisions,
        "faults": faults,
    }


def report_core(report: dict[str, Any]) -> dict[str, Any]:
    """The part of a report that the same seed must reproduce (no ids, no wall-clock times)."""
    return {
        "alerts": report.get("alerts"), "first": report.get("first"), "latency_s": report.get("latency_s"),
        "goals": report.get("goals"),
        "events": [{k: v for k, v in e.items() if k != "requests"} | {"requests": [
            {k: v for k, v in r.items() if k != "id"} for r in e["requests"]]} for e in report.get("events", [])],
        "dispatches": [{k: v for k, v in d.items() if k not in ("id", "request")} for d in report.get("dispatches", [])],
        "notifications": sorted((n["event"], n["recipient"], n["channel"], n["status"], n["sent_at"])
                                for n in report.get("notifications", [])),
        "policy_decisions": sorted((d["at"], d["action"], d["decision"]) for d in report.get("policy_decisions", [])),
    }
