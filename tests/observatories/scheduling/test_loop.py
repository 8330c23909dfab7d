"""The whole loop through a real Celery worker and the simulated network over real HTTP.

A request is dispatched to several sites; one site goes cloudy and its copy
fails; another completes; the remaining copies are cancelled; the request
completes; and nothing was submitted twice. Then the hard cases: a worker
killed in the middle of a submission, and a Redis that lost its messages.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import pytest
import redis
from astropy.coordinates import get_sun
from astropy.time import Time
from django.conf import settings
from django.utils import timezone
from tom_targets.models import Target

from observatories.models import Facility
from observatories.network import network_load
from observatories.scheduling.models import Dispatch, DispatchState, ObservingRequest, RequestState
from observatories.scheduling.services import network_plan, request_submit, scheduling_reconcile
from observatories.scheduling.tasks import dispatches_poll_task
from observatories.simnet.models import SimObservation, SimRequestGroup
from observatories.simnet.services import sim_now, sim_tick, sim_weather_set
from policies.services import team_create
from tests.conftest import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Three southern sites on three continents; the target sits opposite the Sun, so it is up all night at each.
SITES = {"coj": "coj-1m0-a", "cpt": "cpt-1m0-a", "lsc": "lsc-1m0-a"}


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


@pytest.fixture
def network(live_server):
    """The default network, driven over HTTP at the live server; only three 1-m facilities enabled."""
    network_load()
    Facility.objects.update(enabled=False, api_url=f"{live_server.url}/sim/", archive_url=f"{live_server.url}/sim/archive/")
    Facility.objects.filter(code__in=SITES.values()).update(enabled=True)
    return live_server


@pytest.fixture
def team(user):
    return team_create(name="Microlensing Alliance", admins=[user]).group


@pytest.fixture
def target():
    now = Time(timezone.now())
    sun = get_sun(now)
    return Target.objects.create(name="AT 2026night", type=Target.SIDEREAL, ra=(sun.ra.deg + 180.0) % 360.0, dec=-35.0)


def submit(target, team, user, hours: float = 30.0) -> ObservingRequest:
    now = timezone.now()
    return request_submit(
        target=target, team=team, requester=user, telescope_class="1m0",
        exposures=[{"filter": "rp", "exposure_s": 60, "count": 1}],
        window_start=now, window_end=now + timedelta(hours=hours), success_probability=0.95,
    )


def submitted(request: ObservingRequest, n: int) -> list[Dispatch]:
    def ready():
        rows = list(Dispatch.objects.filter(request=request).select_related("facility__site"))
        done = [d for d in rows if d.state == DispatchState.SUBMITTED]
        return rows if len(rows) >= n and len(done) == len(rows) else None

    try:
        return wait_until(ready, what=f"{n} submitted copies")
    except AssertionError:
        states = list(Dispatch.objects.filter(request=request).values_list("facility__code", "state", "reason"))
        raise AssertionError(f"copies did not all reach the facilities: {states}") from None


@contextlib.contextmanager
def paused(worker: WorkerProcess):
    """The session worker is stopped for a while and started again after.

    (Celery's cancel_consumer is not enough on Redis: a blocking pop already
    in flight can still take the next message.)
    """
    worker.stop()
    try:
        yield
    finally:
        worker.start()


def assert_one_group_per_copy() -> None:
    names = list(SimRequestGroup.objects.values_list("name", flat=True))
    assert len(names) == len(set(names)), f"a copy was submitted twice: {sorted(names)}"
    assert set(names) == set(Dispatch.objects.exclude(remote_id="").values_list("idempotency_key", flat=True))


def slots_of(copies: list[Dispatch]) -> dict[int, SimObservation]:
    """The slot each copy's facility booked for it (the simulator's observation of its request group)."""
    by_name = {o.request.group.name: o for o in SimObservation.objects.select_related("request__group")}
    return {d.pk: by_name[d.idempotency_key] for d in copies}


def test_cloudy_site_fails_another_completes_twins_cancelled(celery_worker_process, network, team, target, user):
    request = submit(target, team, user)
    copies = submitted(request, 3)
    assert len({d.facility.site.code for d in copies}) >= 2, "copies should be spread over independent sites"
    request.refresh_from_db()
    assert request.state == RequestState.DISPATCHED
    assert request.plan_probability >= 0.95

    # The facilities booked one slot each; order the copies as the Earth turns.
    slots = slots_of(copies)
    first, second, *_ = sorted(copies, key=lambda d: slots[d.pk].start)
    assert second.facility.site != first.facility.site
    # Cloud over the first site for its copy's slot (which may already have begun at submission).
    cloud_from = min(sim_now(), slots[first.pk].start) - timedelta(minutes=1)
    cloudy_hours = (slots[first.pk].end - cloud_from).total_seconds() / 3600 + 0.5
    sim_weather_set(site=first.facility.site, state="cloudy", hours=cloudy_hours, now=cloud_from)
    sim_weather_set(site=second.facility.site, state="clear", hours=48)

    # The first site's night passes under cloud. As at LCO, the facility keeps the group PENDING and retries it
    # itself; Baton reads the failed attempt under the live group and counts the chance as lost at once.
    p_before = Dispatch.objects.get(pk=first.pk).p_success
    sim_tick(now=slots[first.pk].end + timedelta(minutes=1))
    dispatches_poll_task.delay()
    wait_until(
        lambda: Dispatch.objects.get(pk=first.pk).failed_attempts == 1,
        what=lambda: f"the failed attempt; copy {Dispatch.objects.filter(pk=first.pk).values_list('state', 'reason').first()}, "
        f"facility {SimObservation.objects.filter(pk=slots[first.pk].pk).values_list('state', 'fail_reason', 'start', 'end').first()}",
    )
    first.refresh_from_db()
    assert first.state in (DispatchState.SUBMITTED, DispatchState.PENDING)  # still live: the facility retries it
    assert "Weather" in first.reason and first.p_success < p_before
    assert SimRequestGroup.objects.get(name=first.idempotency_key).state == "PENDING"
    # ...and the request was re-planned within a minute of that news, with the lost chance counted.
    news_at = first.transitions.latest("at").at

    def replanned() -> bool:
        planned_at = ObservingRequest.objects.get(pk=request.pk).planned_at
        return planned_at is not None and planned_at > news_at

    wait_until(replanned, what="a re-plan after the failed attempt")

    # The second site observes it (or a copy the re-plan added under a clear sky, whichever slot comes first).
    sim_tick(now=slots[second.pk].end + timedelta(minutes=1))
    dispatches_poll_task.delay()
    wait_until(lambda: ObservingRequest.objects.get(pk=request.pk).state == RequestState.COMPLETED, what="completion")
    [observed] = Dispatch.objects.filter(request=request, state=DispatchState.COMPLETED).select_related("facility__site")
    assert observed.facility.site != first.facility.site  # not under the cloud
    original = {d.pk for d in copies}
    for twin in Dispatch.objects.filter(request=request, pk__in=original).exclude(pk__in=[observed.pk, first.pk]):
        assert twin.state == DispatchState.CANCELLED, (twin.facility.code, twin.state, twin.reason)
        assert "twin observed" in twin.reason
        # The facility was told and confirmed: the twin's group is cancelled there (or, when the twin's own slot
        # passed in the same tick, observed before the cancel arrived: its data are kept, the time was spent).
        wait_until(lambda t=twin: Dispatch.objects.get(pk=t.pk).withdrawn_at is not None, what="remote cancel")
        assert SimRequestGroup.objects.get(name=twin.idempotency_key).state in ("CANCELED", "COMPLETED")
    # Copies the re-plan added have ended too (withdrawn as twins, or refused: this test moves the simulator's clock
    # ahead of Baton's, so a chance Baton still sees ahead may already be past at the facility).
    for added in Dispatch.objects.filter(request=request).exclude(pk__in=original):
        assert added.state in (DispatchState.CANCELLED, DispatchState.FAILED_OTHER, DispatchState.EXPIRED,
                               DispatchState.COMPLETED), (added.facility.code, added.state)
    # The first copy's retries ran out with its window (it expired at the facility), or it was withdrawn as a twin.
    first.refresh_from_db()
    assert first.state in (DispatchState.EXPIRED, DispatchState.CANCELLED)
    assert SimRequestGroup.objects.get(name=first.idempotency_key).state in ("WINDOW_EXPIRED", "CANCELED")
    # Data arrived from the facility's science archive: frames as TOM data products, and their photometry as
    # TOM photometry on the target (what its page and photometry API read), from the facility that observed it.
    from tom_dataproducts.models import DataProduct, PhotometryReducedDatum

    points = wait_until(lambda: list(PhotometryReducedDatum.objects.filter(target=target)), what="photometry")
    assert points and all(p.source_name == f"Baton/{observed.facility.code}" for p in points)
    assert DataProduct.objects.filter(target=target, observation_record=observed.observation_record).count() == len(points)
    # ...owned by the team, so its policy shares and releases them.
    from policies.models import DataOwnership

    owned = DataOwnership.objects.filter(object_id__in=[p.pk for p in points], kind="photometry")
    assert owned.count() >= len(points) and team.pk in set(owned.values_list("team_id", flat=True))
    # Every live copy of the request is gone, and the history says why.
    assert not Dispatch.objects.filter(request=request, state__in=["queued", "submitted", "pending"]).exists()
    states = list(request.transitions.values_list("to_state", flat=True))
    assert states[0] == RequestState.PENDING and states[-1] == RequestState.COMPLETED
    assert_one_group_per_copy()


def test_worker_killed_mid_submission_loses_nothing_and_duplicates_nothing(celery_worker_process, network, team, target, user):
    import requests as http

    from observatories.simnet.auth import simnet_token

    # The facility accepts the request group and then stalls before answering: the worker is mid-call.
    http.post(f"{network.url}/sim/api/faults/", json={"kind": "delay_after", "method": "POST", "path": "api/requestgroups/",
              "count": 1, "delay_s": 20}, headers={"Authorization": f"Token {simnet_token()}"}, timeout=10).raise_for_status()
    with paused(celery_worker_process):
        doomed = WorkerProcess()
        doomed.start()
        try:
            request = submit(target, team, user)
            wait_until(lambda: SimRequestGroup.objects.count() >= 1, what="the first group to reach the facility")
            doomed.kill()
        finally:
            doomed.stop()
    stuck = list(Dispatch.objects.filter(request=request, state=DispatchState.QUEUED))
    assert stuck, "the killed worker's copy should still be queued"
    # The reconciler re-drives it under the same key: the facility's group is found, not made again.
    scheduling_reconcile(now=timezone.now() + timedelta(minutes=5))
    submitted(request, 3)
    assert Dispatch.objects.filter(request=request).count() == 3
    assert_one_group_per_copy()


def test_flushed_redis_loses_no_request(celery_worker_process, network, team, target, user):
    # The planning message is enqueued for real, and lost with everything else in Redis.
    with paused(celery_worker_process):
        request = submit(target, team, user)
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        assert client.llen(settings.CELERY_TASK_DEFAULT_QUEUE) >= 1
        client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    request.refresh_from_db()
    assert request.state == RequestState.PENDING
    assert not Dispatch.objects.filter(request=request).exists()
    # The reconciler finds the request in the database and drives it to the facilities.
    scheduling_reconcile()
    copies = submitted(request, 3)
    assert len(copies) == 3
    assert_one_group_per_copy()


def test_planning_twice_adds_no_copies(celery_worker_process, network, team, target, user):
    request = submit(target, team, user)
    submitted(request, 3)
    plans = network_plan(request_ids=[request.pk])
    assert plans[request.pk].outcome == "already covered"
    assert Dispatch.objects.filter(request=request).count() == 3
