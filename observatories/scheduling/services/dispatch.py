"""Dispatches at facilities: submit, poll, cancel, and react to what happened.

The rules that make redundancy work:
- submit is idempotent: the dispatch row exists (QUEUED) before any HTTP,
  its idempotency key is the request group's name at the facility, and the
  portal client looks the key up before it posts, so a retried, duplicated or
  crash-interrupted submission never makes a second request group;
- the first copy of a visit that completes wins: its twins are cancelled,
  and the request completes (or moves on to its next cadence visit);
- a copy that fails (weather, downtime, other) triggers a re-plan of its
  request with what is left; when the window closes the request expires;
- a portal keeps a group PENDING after a failed observation and retries it
  itself within its window: Baton reads each attempt under the live group, and
  a failed attempt is a lost chance at once (the copy's p(success) drops to
  what the portal's own retries may still bring, and the request is re-planned
  elsewhere), while the copy stays live for those retries.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from observatories.portal.client import (
    FailureKind,
    PortalError,
    RemoteRequest,
    portal_client_for,
)
from observatories.portal.client import (
    RequestState as RemoteState,
)
from observatories.portal.payload import Exposure, request_group_payload

from .. import hooks
from ..models import (
    DISPATCH_LIVE,
    DISPATCH_TERMINAL,
    Dispatch,
    DispatchState,
    ObservingRequest,
    RequestState,
)
from .lifecycle import IllegalTransition, dispatch_transition, request_transition

logger = logging.getLogger(__name__)

TOM_FACILITY_NAME = "Baton"


# What a copy's chance is still worth after a failed attempt at the facility, which keeps retrying it within
# its window: under a sky that clouded over the same night rarely clears in time; another fault may be fixed.
P_RETRY_AFTER_WEATHER = 0.25
P_RETRY_AFTER_OTHER = 0.5


def _target_mag(target) -> float | None:  # type: ignore[no-untyped-def]
    """The target's latest measured magnitude (any band), so a facility's exposure and the simulator's
    photometry match the target's brightness; None when it has none."""
    from tom_dataproducts.models import PhotometryReducedDatum

    latest = (
        PhotometryReducedDatum.objects.filter(target=target, brightness__isnull=False)
        .order_by("-timestamp").values_list("brightness", flat=True).first()
    )
    return float(latest) if latest is not None else None


def _payload(dispatch: Dispatch) -> dict:
    request = dispatch.request
    target = request.target
    instrument = (
        dispatch.facility.instruments.filter(kind=request.instrument_kind).first()
        or dispatch.facility.instruments.first()
    )
    if instrument is None:
        raise PortalError(f"facility {dispatch.facility.code} has no instrument")
    proposal = hooks.proposal_for(team=request.team, facility=dispatch.facility, at=dispatch.window_start)
    if not proposal:
        raise PortalError(f"the team has no proposal on {dispatch.facility.code}")
    return request_group_payload(
        target_name=target.name, ra_deg=float(target.ra), dec_deg=float(target.dec), instrument=instrument,
        exposures=[Exposure(filter=e["filter"], exposure_time_s=e["exposure_s"], count=e["count"]) for e in request.exposures],
        window_start=dispatch.window_start, window_end=dispatch.window_end, max_airmass=request.max_airmass,
        min_lunar_distance_deg=request.min_moon_separation_deg, ipp_value=max(0.5, min(2.0, request.priority / 5.0)),
        proposal=proposal, target_mag=_target_mag(target), min_duration_s=dispatch.duration_s,
    )


def dispatch_submit(*, dispatch_id: int, now: datetime | None = None) -> Dispatch:
    """Send a queued dispatch to its facility (idempotent; safe to call again at any point).

    Raises PortalUnavailable for a transient failure (the task retries); a
    permanent refusal (PortalError) fails the dispatch and re-plans its request.
    """
    now = now or timezone.now()
    with transaction.atomic():
        dispatch = Dispatch.objects.select_for_update().select_related("request__target", "facility__site").get(pk=dispatch_id)
        if dispatch.state != DispatchState.QUEUED:
            return dispatch
        # Counted (and committed) before the HTTP call: a crash after the facility accepted it
        # leaves a QUEUED row that the reconciler re-submits under the same key.
        dispatch.submit_attempts += 1
        dispatch.save(update_fields=["submit_attempts"])
    if not _speaks_portal(dispatch.facility):
        return _submit_through_tom_module(dispatch, now=now)
    try:
        client = portal_client_for(dispatch.facility)
        remote = client.submit(payload=_payload(dispatch), idempotency_key=dispatch.idempotency_key)
    except PortalError as exc:
        detail = "; ".join(exc.messages) or str(exc)
        dispatch, _ = dispatch_transition(dispatch_id=dispatch.pk, to=DispatchState.FAILED_OTHER, reason=f"refused: {detail}", now=now)
        _after_failure(dispatch, now=now)
        return dispatch
    except ValueError as exc:  # the payload could not be built (e.g. a filter the instrument lacks)
        dispatch, _ = dispatch_transition(dispatch_id=dispatch.pk, to=DispatchState.FAILED_OTHER, reason=str(exc), now=now)
        _after_failure(dispatch, now=now)
        return dispatch
    return _record_submission(dispatch.pk, remote, now=now)


def _speaks_portal(facility) -> bool:  # type: ignore[no-untyped-def]
    from observatories.portal.facility import speaks_portal_api_path

    return speaks_portal_api_path(facility.adapter)


def _copy_values(dispatch: Dispatch):  # type: ignore[no-untyped-def]
    from observatories.tomfacility import CopyValues

    request, target = dispatch.request, dispatch.request.target
    first = request.exposures[0]
    return CopyValues(
        target_name=target.name, ra_deg=float(target.ra), dec_deg=float(target.dec), window_start=dispatch.window_start,
        window_end=dispatch.window_end, exposure_s=float(first["exposure_s"]), exposure_count=int(first["count"]),
        filter=str(first["filter"]), max_airmass=request.max_airmass, mag=_target_mag(target),
    )


def _submit_through_tom_module(dispatch: Dispatch, *, now: datetime) -> Dispatch:
    """Submit a copy to a facility that is not a portal, through its TOM module: once, never twice."""
    from observatories.tomfacility import TomFacilityCopy, TomFacilityRefused

    if dispatch.submit_attempts > 1:
        # No idempotency key at such a facility: an attempt whose outcome is unknown is not repeated.
        dispatch, _ = dispatch_transition(
            dispatch_id=dispatch.pk, to=DispatchState.FAILED_OTHER, now=now,
            reason="an earlier submission's outcome is unknown and this facility cannot be asked; not sent again "
            "(no duplicate trigger)",
        )
        _after_failure(dispatch, now=now)
        return dispatch
    driver = TomFacilityCopy(dispatch.facility)
    try:
        remote = driver.submit(target=dispatch.request.target, values=_copy_values(dispatch))
    except TomFacilityRefused as exc:
        dispatch, _ = dispatch_transition(
            dispatch_id=dispatch.pk, to=DispatchState.FAILED_OTHER, now=now, reason=f"refused: {'; '.join(exc.messages)}"[:500]
        )
        _after_failure(dispatch, now=now)
        return dispatch
    except Exception as exc:  # noqa: BLE001 - a module's own errors (credentials, HTTP): the outcome is unknown
        logger.warning("dispatch %s: %s submission failed: %s", dispatch.pk, driver.tom_name, exc)
        dispatch, _ = dispatch_transition(
            dispatch_id=dispatch.pk, to=DispatchState.FAILED_OTHER, now=now,
            reason=f"{driver.tom_name} submission failed: {exc}"[:500],
        )
        _after_failure(dispatch, now=now)
        return dispatch
    return _record_submission(dispatch.pk, remote, now=now, tom_facility=driver.tom_name)


def _record_submission(
    dispatch_id: int, remote: RemoteRequest, *, now: datetime | None, tom_facility: str = ""
) -> Dispatch:
    from tom_observations.models import ObservationRecord

    now = now or timezone.now()
    with transaction.atomic():
        dispatch = Dispatch.objects.select_for_update().select_related("request__target", "facility").get(pk=dispatch_id)
        if dispatch.state == DispatchState.CANCELLED:
            # Cancelled while the submission was in flight: withdraw it at the facility as well (durably: the
            # reconciler re-drives it until the facility confirms).
            from ..tasks import dispatch_cancel_remote_task

            Dispatch.objects.filter(pk=dispatch.pk).update(remote_id=remote.remote_id, withdrawn_at=None)
            dispatch_cancel_remote_task.delay_on_commit(dispatch.pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
            return dispatch
        if dispatch.state != DispatchState.QUEUED:
            return dispatch
        # A portal copy is a "Baton" observation (facility code + group id); a TOM module's copy is that module's
        # own observation, so TOM's pages and status updates work on it as on one submitted by hand.
        record = ObservationRecord.objects.create(
            target=dispatch.request.target, facility=tom_facility or TOM_FACILITY_NAME,
            observation_id=remote.remote_id if tom_facility else f"{dispatch.facility.code}:{remote.remote_id}",
            status="PENDING",
            parameters={"baton_dispatch": dispatch.pk, "baton_request": dispatch.request_id,
                        "facility": dispatch.facility.code},
            scheduled_start=dispatch.window_start, scheduled_end=dispatch.window_end,
        )
        dispatch, _ = dispatch_transition(
            dispatch_id=dispatch.pk, to=DispatchState.SUBMITTED, now=now,
            reason=f"accepted by {dispatch.facility.code} as {remote.remote_id}",
            remote_id=remote.remote_id, submitted_at=now, observation_record=record,
        )
        request = dispatch.request
        if request.state in (RequestState.PLANNED, RequestState.PENDING):
            if request.state == RequestState.PENDING:
                request_transition(request_id=request.pk, to=RequestState.PLANNED, now=now, reason="copy submitted")
            request_transition(
                request_id=request.pk, to=RequestState.DISPATCHED, now=now,
                reason=f"copy at {dispatch.facility.code} submitted",
            )
            hooks.notify(event="request.dispatched", request=request, facility=dispatch.facility.code)
    return dispatch


_REMOTE_TO_DISPATCH = {
    RemoteState.COMPLETED: DispatchState.COMPLETED,
    RemoteState.WINDOW_EXPIRED: DispatchState.EXPIRED,
    RemoteState.CANCELED: DispatchState.CANCELLED,
}


def dispatch_poll(*, dispatch_id: int, now: datetime | None = None) -> Dispatch:
    """Ask the facility how a submitted dispatch is doing and react to any change.

    Raises PortalUnavailable when the facility cannot be reached (the task retries).
    """
    dispatch = Dispatch.objects.select_related("facility__site", "request").get(pk=dispatch_id)
    if dispatch.state not in (DispatchState.SUBMITTED, DispatchState.PENDING, DispatchState.IN_PROGRESS):
        return dispatch
    if _speaks_portal(dispatch.facility):
        remote = portal_client_for(dispatch.facility).status(remote_id=dispatch.remote_id)
    else:
        from observatories.tomfacility import TomFacilityCopy

        remote = TomFacilityCopy(dispatch.facility).status(remote_id=dispatch.remote_id)
    return dispatch_apply_remote(dispatch_id=dispatch.pk, remote=remote, now=now)


def dispatch_apply_remote(*, dispatch_id: int, remote: RemoteRequest, now: datetime | None = None) -> Dispatch:
    """Bring a dispatch in line with the facility's word, then react (data, twins, re-plan)."""
    now = now or timezone.now()
    if remote.state == RemoteState.PENDING:
        target_state = DispatchState.PENDING
    elif remote.state == RemoteState.FAILED:
        weather = remote.failure_kind == FailureKind.WEATHER
        target_state = DispatchState.FAILED_WEATHER if weather else DispatchState.FAILED_OTHER
    else:
        target_state = _REMOTE_TO_DISPATCH[remote.state]
    try:
        dispatch, changed = dispatch_transition(
            dispatch_id=dispatch_id, to=target_state, now=now,
            reason=remote.reason or f"facility says {remote.raw_state}",
        )
    except IllegalTransition:
        # e.g. we already cancelled it and the facility still reports it pending: ours stands.
        return Dispatch.objects.get(pk=dispatch_id)
    if remote.state == RemoteState.PENDING and remote.failed_attempts:
        _record_failed_attempts(dispatch_id=dispatch_id, remote=remote, now=now)
        dispatch.refresh_from_db()
    if not changed:
        return dispatch
    if target_state == DispatchState.COMPLETED:
        _store_data(dispatch, remote)
        _after_success(dispatch, now=now)
    elif target_state in (DispatchState.FAILED_WEATHER, DispatchState.FAILED_OTHER, DispatchState.EXPIRED):
        _after_failure(dispatch, now=now)
    elif target_state == DispatchState.CANCELLED:
        _book_usage(dispatch, kind="cancelled")
    return dispatch


def _record_failed_attempts(*, dispatch_id: int, remote: RemoteRequest, now: datetime) -> None:
    """New failed attempts under a live group: the chance is lost now; re-plan while the portal retries."""
    failed = remote.failed_attempts
    with transaction.atomic():
        dispatch = Dispatch.objects.select_for_update().select_related("facility").get(pk=dispatch_id)
        if len(failed) <= dispatch.failed_attempts or dispatch.state not in DISPATCH_LIVE:
            return
        new = failed[dispatch.failed_attempts :]
        factor = 1.0
        for attempt in new:
            factor *= P_RETRY_AFTER_WEATHER if attempt.failure_kind == FailureKind.WEATHER else P_RETRY_AFTER_OTHER
        last = new[-1]
        dispatch.failed_attempts = len(failed)
        dispatch.p_success = dispatch.p_success * factor
        dispatch.reason = (
            f"attempt {len(failed)} failed at {last.site or dispatch.facility.code}: {last.reason or last.state}; "
            "the facility retries it in its window"
        )[:500]
        dispatch.save(update_fields=["failed_attempts", "p_success", "reason"])
        dispatch.transitions.create(from_state=dispatch.state, to_state=dispatch.state, reason=dispatch.reason, at=now)
        request = ObservingRequest.objects.get(pk=dispatch.request_id)
        if not request.is_open:
            return
        hooks.notify(event="request.copy_failed", request=request, facility=dispatch.facility.code,
                     reason=dispatch.reason, state="attempt_failed")
        _replan_on_commit(request.pk)


def _store_data(dispatch: Dispatch, remote: RemoteRequest) -> None:
    """Fetch the completed copy's frames from the facility's science archive, after commit (a task with retries:
    archives lag). The frames become TOM data products and their photometry the target's TOM photometry, owned by
    the team, whose policy then decides who sees them and when (``services.data``)."""
    from ..tasks import dispatch_data_fetch_task

    dispatch_data_fetch_task.delay_on_commit(dispatch.pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4


def _book_usage(dispatch: Dispatch, *, kind: str) -> None:
    hours = dispatch.duration_s / 3600.0 if kind == "completed" else 0.0
    hooks.usage_record(
        team=dispatch.request.team, facility_code=dispatch.facility.code,
        telescope_class=dispatch.facility.telescope_class, hours=hours, kind=kind,
        source_key=f"dispatch:{dispatch.pk}",
    )


def _after_success(dispatch: Dispatch, *, now: datetime) -> None:
    """The visit is done: cancel its twins; complete the request or move to the next visit."""
    _book_usage(dispatch, kind="completed")
    with transaction.atomic():
        request = ObservingRequest.objects.select_for_update().get(pk=dispatch.request_id)
        if request.state in (RequestState.COMPLETED, RequestState.CANCELLED, RequestState.EXPIRED, RequestState.FAILED):
            return
        if dispatch.visit != request.visit:
            return  # a late success of an earlier visit: its data is kept, the plan moves on
        twins = list(
            Dispatch.objects.filter(request=request, visit=dispatch.visit, state__in=DISPATCH_LIVE).exclude(pk=dispatch.pk)
        )
        request.visits_completed += 1
        last_visit = request.visit + 1 >= request.cadence_visits
        if not last_visit:
            request.visit += 1
        request.save(update_fields=["visits_completed", "visit", "updated_at"])
        if last_visit:
            request_transition(request_id=request.pk, to=RequestState.COMPLETED, now=now,
                               reason=f"observed at {dispatch.facility.code}")
            event = "request.completed"
        else:
            request_transition(request_id=request.pk, to=RequestState.PENDING, now=now,
                               reason=f"visit {dispatch.visit + 1} observed at {dispatch.facility.code}; next visit")
            event = "request.visit_completed"
        for twin in twins:
            dispatch_cancel(dispatch_id=twin.pk, reason=f"twin observed at {dispatch.facility.code}", now=now)
        if not last_visit:
            _replan_on_commit(request.pk)
    hooks.notify(event=event, request=request, facility=dispatch.facility.code, twins_cancelled=len(twins))


def _after_failure(dispatch: Dispatch, *, now: datetime) -> None:
    """A copy failed: re-plan the request with what is left (or expire it when its time is up)."""
    request = ObservingRequest.objects.get(pk=dispatch.request_id)
    if not request.is_open:
        return
    hooks.notify(event="request.copy_failed", request=request, facility=dispatch.facility.code,
                 reason=dispatch.reason, state=dispatch.state)
    _replan_on_commit(request.pk)


def _replan_on_commit(request_id: int) -> None:
    from ..tasks import network_plan_task

    network_plan_task.delay_on_commit([request_id])  # type: ignore[attr-defined]  # celery-types predates Celery 5.4


def dispatch_cancel(*, dispatch_id: int, reason: str, now: datetime | None = None) -> Dispatch:
    """Withdraw a copy: locally if it was never sent, at the facility (after commit) if it was."""
    dispatch = Dispatch.objects.select_related("facility__site").get(pk=dispatch_id)
    if dispatch.state in DISPATCH_TERMINAL:
        return dispatch
    dispatch, changed = dispatch_transition(dispatch_id=dispatch_id, to=DispatchState.CANCELLED, reason=reason, now=now)
    if changed and not (dispatch.remote_id or dispatch.submit_attempts):
        # Never sent: nothing to withdraw anywhere.
        Dispatch.objects.filter(pk=dispatch.pk).update(withdrawn_at=now or timezone.now())
    elif changed:
        # Sent, or perhaps sent (a submission whose answer was lost): the facility is told, and the reconciler
        # tells it again until it confirms (``withdrawn_at``).
        from ..tasks import dispatch_cancel_remote_task

        dispatch_cancel_remote_task.delay_on_commit(dispatch.pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    return dispatch


def dispatch_cancel_remote(*, dispatch_id: int, now: datetime | None = None) -> None:
    """Tell the facility a cancelled copy is withdrawn, until it confirms (idempotent; PortalUnavailable retries).

    A copy with no remote id whose submission was attempted is first looked up at the portal by its key: a POST the
    portal committed but whose answer was lost left a group there, which is found and cancelled. Confirmation is
    recorded in ``withdrawn_at``; the reconciler re-drives cancelled copies without it.
    """
    now = now or timezone.now()
    dispatch = Dispatch.objects.select_related("facility__site").get(pk=dispatch_id)
    if dispatch.state != DispatchState.CANCELLED or dispatch.withdrawn_at is not None:
        return
    if not _speaks_portal(dispatch.facility):
        from observatories.tomfacility import TomFacilityCopy

        reason = dispatch.reason
        if not dispatch.remote_id:
            reason = f"{reason}; its submission's outcome is unknown and its TOM module cannot be asked: check " \
                     f"{dispatch.facility.code} by hand"
        elif not TomFacilityCopy(dispatch.facility).cancel(remote_id=dispatch.remote_id):
            reason = f"{reason}; its TOM module cannot withdraw it: tell {dispatch.facility.code} by hand"
        Dispatch.objects.filter(pk=dispatch.pk).update(reason=reason[:500], withdrawn_at=now)
        if dispatch.remote_id:
            _book_usage(dispatch, kind="cancelled")
        return
    client = portal_client_for(dispatch.facility)
    remote_id = dispatch.remote_id
    if not remote_id:
        found = client.find(idempotency_key=dispatch.idempotency_key)
        if found is None:
            Dispatch.objects.filter(pk=dispatch.pk).update(withdrawn_at=now)  # it never arrived
            return
        remote_id = found.remote_id
        Dispatch.objects.filter(pk=dispatch.pk).update(remote_id=remote_id)
        dispatch.remote_id = remote_id
    remote = client.cancel(remote_id=remote_id)
    Dispatch.objects.filter(pk=dispatch.pk).update(withdrawn_at=now)
    if remote.state == RemoteState.COMPLETED:
        # It was observed before the cancel arrived: keep the data; the time was spent.
        _store_data(dispatch, remote)
        _book_usage(dispatch, kind="completed")
    else:
        _book_usage(dispatch, kind="cancelled")


def dispatches_withdraw_owed(*, now: datetime | None = None, grace: timedelta = timedelta(minutes=2),
                             give_up_after: timedelta = timedelta(days=7)) -> list[int]:
    """Cancelled copies the facility has not confirmed withdrawn (a lost message, a flushed Redis, a facility that
    was down): their cancels, enqueued again. Returns their ids."""
    from django.db.models import Q

    from ..tasks import dispatch_cancel_remote_task

    now = now or timezone.now()
    owed = list(
        Dispatch.objects.filter(
            state=DispatchState.CANCELLED, withdrawn_at__isnull=True,
            finished_at__lte=now - grace, finished_at__gte=now - give_up_after,
        ).filter(~Q(remote_id="") | Q(submit_attempts__gt=0)).values_list("pk", flat=True)
    )
    for pk in owed:
        dispatch_cancel_remote_task.delay(pk)
    return owed


def request_cancel(*, request_id: int, actor: str, now: datetime | None = None) -> ObservingRequest:
    """Cancel a request and withdraw all its live copies."""
    now = now or timezone.now()
    with transaction.atomic():
        request, _ = request_transition(request_id=request_id, to=RequestState.CANCELLED, actor=actor, now=now,
                                        reason=f"cancelled by {actor}")
        for dispatch in Dispatch.objects.filter(request_id=request_id, state__in=DISPATCH_LIVE):
            dispatch_cancel(dispatch_id=dispatch.pk, reason=f"request cancelled by {actor}", now=now)
    return request


def requests_expire(*, now: datetime | None = None) -> list[int]:
    """Expire open requests whose window is over (their live copies are withdrawn). Returns their ids."""
    now = now or timezone.now()
    expired = []
    for request in ObservingRequest.objects.filter(
        state__in=[RequestState.PENDING, RequestState.PLANNED, RequestState.DISPATCHED, RequestState.IN_PROGRESS],
        window_end__lte=now,
    ):
        # A copy still running at the facility may yet complete: wait for its word.
        if Dispatch.objects.filter(request=request, state=DispatchState.IN_PROGRESS).exists():
            continue
        with transaction.atomic():
            request_transition(
                request_id=request.pk, to=RequestState.EXPIRED, now=now,
                reason=f"window over; {request.visits_completed}/{request.cadence_visits} visits observed",
            )
            for dispatch in Dispatch.objects.filter(request=request, state__in=DISPATCH_LIVE):
                dispatch_cancel(dispatch_id=dispatch.pk, reason="request window over", now=now)
        hooks.notify(event="request.expired", request=request, visits_completed=request.visits_completed)
        expired.append(request.pk)
    return expired
