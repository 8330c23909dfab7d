"""The simulator's state: its clock, weather overrides, downtime, injected faults, and the requests it holds.

States follow the LCO observation portal's: request groups and requests are
PENDING, COMPLETED, WINDOW_EXPIRED, CANCELED or FAILURE_LIMIT_REACHED;
observations (scheduled attempts) are PENDING, COMPLETED, FAILED or CANCELED.
"""

from __future__ import annotations

from django.db import models

from observatories.models import Facility, Instrument, Site


class SimClock(models.Model):
    """The simulated clock: simulated now = wall-clock now + ``offset_s`` (one row, id 1)."""

    offset_s = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sim clock {self.offset_s:+.0f} s"


class SimWeatherOverride(models.Model):
    """A site's weather forced to clear or cloudy over [start, end) (the latest override wins)."""

    class State(models.TextChoices):
        CLEAR = "clear"
        CLOUDY = "cloudy"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.site_id}: {self.state} {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M}"


class SimDowntime(models.Model):
    """A facility out of service over [start, end) (``end`` null: until cleared)."""

    facility = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=300)
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start", "-id"]

    def __str__(self) -> str:
        return f"{self.facility_id}: {self.reason}"


class SimFault(models.Model):
    """A fault injected into the portal API, for drills and tests: the next ``remaining`` matching calls fail.

    Kinds: ``error_500`` answers 500 without doing anything; ``error_500_after``
    does the work (commits it) and then answers 500, the ambiguous failure an
    idempotent client must survive; ``delay_after`` does the work and then waits
    ``delay_s`` before answering, so a client with a shorter timeout gives up.
    """

    class Kind(models.TextChoices):
        ERROR_500 = "error_500"
        ERROR_500_AFTER = "error_500_after"
        DELAY_AFTER = "delay_after"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    method = models.CharField(max_length=8, blank=True, help_text="HTTP method; blank: any")
    path_prefix = models.CharField(max_length=200, blank=True, help_text="path under /sim/, e.g. 'api/requestgroups/'")
    remaining = models.PositiveIntegerField(default=1)
    delay_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} x{self.remaining} {self.method} {self.path_prefix}"


class SimRequestGroup(models.Model):
    """A request group as the portal keeps it."""

    name = models.CharField(max_length=50, db_index=True)
    proposal = models.CharField(max_length=100, blank=True)
    ipp_value = models.FloatField(default=1.0)
    operator = models.CharField(max_length=16, default="SINGLE")
    observation_type = models.CharField(max_length=32, default="NORMAL")
    state = models.CharField(max_length=32, default="PENDING")
    created = models.DateTimeField()
    modified = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.pk} {self.name} {self.state}"


class SimRequest(models.Model):
    """One request of a group: what to observe, where, within which windows."""

    group = models.ForeignKey(SimRequestGroup, on_delete=models.CASCADE, related_name="requests")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="+")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=32, default="PENDING")
    configurations = models.JSONField()
    windows = models.JSONField()
    location = models.JSONField(default=dict)
    acceptability_threshold = models.FloatField(default=90.0)
    duration_s = models.FloatField()
    modified = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"request {self.pk} {self.state}"


class SimObservation(models.Model):
    """The scheduled attempt at a request: when the telescope will observe it, and how it went."""

    request = models.ForeignKey(SimRequest, on_delete=models.CASCADE, related_name="observations")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=16, default="PENDING")
    fail_reason = models.CharField(max_length=300, blank=True)
    photometry = models.JSONField(default=list, blank=True)
    modified = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"observation {self.pk} {self.state}"
