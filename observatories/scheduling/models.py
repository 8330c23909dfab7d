"""Observing requests and their dispatches: typed state machines with recorded transitions.

An ``ObservingRequest`` is the science goal (a target, a window, how sure the
team wants to be). A ``Dispatch`` is one copy of it submitted to one facility.
Both change state only through ``services.lifecycle``, which checks the
transition against the tables below under a row lock and records it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    PLANNED = "planned", "Planned"
    DISPATCHED = "dispatched", "Dispatched"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


REQUEST_TERMINAL = frozenset({RequestState.COMPLETED, RequestState.EXPIRED, RequestState.FAILED, RequestState.CANCELLED})
_OPEN_REQUEST = {RequestState.PENDING, RequestState.PLANNED, RequestState.DISPATCHED, RequestState.IN_PROGRESS}
# Every open state may fall back to pending/planned (re-plan) or end; a terminal state never changes.
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    RequestState.PENDING: frozenset({RequestState.PLANNED, *REQUEST_TERMINAL} - {RequestState.COMPLETED}),
    RequestState.PLANNED: frozenset({RequestState.PENDING, RequestState.DISPATCHED, *REQUEST_TERMINAL}),
    RequestState.DISPATCHED: frozenset(
        {RequestState.PENDING, RequestState.PLANNED, RequestState.IN_PROGRESS, *REQUEST_TERMINAL}
    ),
    RequestState.IN_PROGRESS: frozenset(
        {RequestState.PENDING, RequestState.PLANNED, RequestState.DISPATCHED, *REQUEST_TERMINAL}
    ),
    **{state: frozenset() for state in REQUEST_TERMINAL},
}


class DispatchState(models.TextChoices):
    QUEUED = "queued", "Queued (not yet sent)"
    SUBMITTED = "submitted", "Submitted"
    PENDING = "pending", "Pending at the facility"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED_WEATHER = "failed_weather", "Failed: weather"
    FAILED_OTHER = "failed_other", "Failed: other"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


DISPATCH_TERMINAL = frozenset(
    {
        DispatchState.COMPLETED, DispatchState.FAILED_WEATHER, DispatchState.FAILED_OTHER,
        DispatchState.CANCELLED, DispatchState.EXPIRED,
    }
)
DISPATCH_LIVE = frozenset({DispatchState.QUEUED, DispatchState.SUBMITTED, DispatchState.PENDING, DispatchState.IN_PROGRESS})
DISPATCH_TRANSITIONS: dict[str, frozenset[str]] = {
    DispatchState.QUEUED: frozenset({DispatchState.SUBMITTED, DispatchState.FAILED_OTHER, DispatchState.CANCELLED, DispatchState.EXPIRED}),
    DispatchState.SUBMITTED: frozenset({DispatchState.PENDING, DispatchState.IN_PROGRESS, *DISPATCH_TERMINAL}),
    DispatchState.PENDING: frozenset({DispatchState.IN_PROGRESS, *DISPATCH_TERMINAL}),
    DispatchState.IN_PROGRESS: frozenset(DISPATCH_TERMINAL),
    **{state: frozenset() for state in DISPATCH_TERMINAL},
}


class ObservingRequest(models.Model):
    """A follow-up goal: observe ``target`` within the window, with the given certainty.

    Exposures are a list of ``{"filter": str, "exposure_s": float, "count": int}``.
    With a cadence, the window is cut into ``cadence_visits`` visits every
    ``cadence_period``; each visit is planned as its own goal and the request
    completes when the last visit has been observed (a missed visit is recorded).
    """

    target = models.ForeignKey("tom_targets.BaseTarget", on_delete=models.PROTECT, related_name="observing_requests")
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="observing_requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    telescope_class = models.CharField(max_length=16, help_text="facility class to use, e.g. '1m0'")
    instrument_kind = models.CharField(max_length=16, default="imaging")
    exposures = models.JSONField(help_text='[{"filter": "rp", "exposure_s": 120, "count": 2}, ...]')
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    cadence_period = models.DurationField(null=True, blank=True)
    cadence_visits = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)])
    visit = models.PositiveIntegerField(default=0, help_text="index of the visit being pursued")
    visits_completed = models.PositiveIntegerField(default=0)
    visits_missed = models.PositiveIntegerField(default=0)
    max_airmass = models.FloatField(default=2.0, validators=[MinValueValidator(1.0), MaxValueValidator(10.0)])
    min_moon_separation_deg = models.FloatField(default=30.0, validators=[MinValueValidator(0.0), MaxValueValidator(180.0)])
    sun_max_alt_deg = models.FloatField(default=-12.0, validators=[MinValueValidator(-90.0), MaxValueValidator(0.0)])
    priority = models.FloatField(default=5.0, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)])
    success_probability = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.01), MaxValueValidator(0.999)],
        help_text="how sure the team wants to be that each visit gets observed",
    )
    allow_same_site = models.BooleanField(default=False, help_text="allow two copies at one site on one night")
    source = models.CharField(max_length=32, default="manual", help_text="manual, api, trigger:<rule>, drill")
    state = models.CharField(max_length=16, choices=RequestState.choices, default=RequestState.PENDING, db_index=True)
    plan_outcome = models.CharField(max_length=32, blank=True, help_text="the planner's last verdict")
    plan_probability = models.FloatField(null=True, blank=True, help_text="combined p(success) of the live copies")
    planned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "window_end"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(window_end__gt=models.F("window_start")), name="request_window_ordered"),
        ]

    def __str__(self) -> str:
        return f"Request {self.pk} for {self.target} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in _OPEN_REQUEST

    def duration_s(self, *, readout_s: float = 30.0, overhead_s: float = 120.0) -> float:
        """Telescope time of one visit: exposures + a readout each + slew/acquisition."""
        return overhead_s + sum(
            (float(e["exposure_s"]) + readout_s) * int(e.get("count", 1)) for e in self.exposures
        )

    def visit_window(self, visit: int | None = None) -> tuple:
        """(start, end) of a visit: the whole window, or its slice of the cadence."""
        n = self.visit if visit is None else visit
        if not self.cadence_period or self.cadence_visits <= 1:
            return self.window_start, self.window_end
        start = self.window_start + self.cadence_period * n
        end = min(self.window_end, start + self.cadence_period)
        return start, end


class RequestTransition(models.Model):
    """One recorded change of a request's state."""

    request = models.ForeignKey(ObservingRequest, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=500, blank=True)
    actor = models.CharField(max_length=100, blank=True, help_text="user, task or service that made it")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"request {self.request_id}: {self.from_state or 'new'} -> {self.to_state}"


class Dispatch(models.Model):
    """One copy of a request's visit at one facility.

    ``idempotency_key`` names the copy everywhere (it is the request group's
    name at the facility), so a retried submission finds the copy it already
    made instead of making a second one.
    """

    request = models.ForeignKey(ObservingRequest, on_delete=models.CASCADE, related_name="dispatches")
    visit = models.PositiveIntegerField(default=0)
    facility = models.ForeignKey("observatories.Facility", on_delete=models.PROTECT, related_name="dispatches")
    state = models.CharField(max_length=16, choices=DispatchState.choices, default=DispatchState.QUEUED, db_index=True)
    idempotency_key = models.CharField(max_length=64, unique=True, default="")
    remote_id = models.CharField(max_length=64, blank=True, db_index=True)
    observation_record = models.OneToOneField(
        "tom_observations.ObservationRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="dispatch"
    )
    window_start = models.DateTimeField(help_text="the chance: when the facility may observe it")
    window_end = models.DateTimeField()
    p_success = models.FloatField(help_text="the planner's p(visible) x p(clear) x p(operational)")
    p_clear = models.FloatField(default=1.0)
    duration_s = models.FloatField()
    reason = models.CharField(max_length=500, blank=True)
    submit_attempts = models.PositiveIntegerField(default=0)
    failed_attempts = models.PositiveIntegerField(
        default=0, help_text="observations the facility tried and failed while it kept the copy live (it retries)"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(
        null=True, blank=True,
        help_text="when the facility confirmed a cancelled copy withdrawn (or it was known never to have arrived); "
        "until then the reconciler sends the cancel again",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["window_start", "pk"]
        verbose_name_plural = "dispatches"
        indexes = [models.Index(fields=["state"]), models.Index(fields=["request", "visit"])]

    def __str__(self) -> str:
        return f"Dispatch {self.pk} of request {self.request_id} at {self.facility_id} ({self.state})"

    def save(self, *args, **kwargs) -> None:
        if not self.idempotency_key:
            self.idempotency_key = f"baton-{uuid.uuid4().hex}"
        super().save(*args, **kwargs)

    @property
    def is_live(self) -> bool:
        return self.state in DISPATCH_LIVE


class DispatchTransition(models.Model):
    """One recorded change of a dispatch's state."""

    dispatch = models.ForeignKey(Dispatch, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"dispatch {self.dispatch_id}: {self.from_state or 'new'} -> {self.to_state}"
