"""Drills: a rehearsal of a team's campaign on the simulated network, in accelerated time.

A :class:`Drill` row (in the real schema) describes the rehearsal: its team, its scenario
(synthetic candidates and scripted faults, see :mod:`drills.scenarios`), its seed and its
progress. Everything the drill makes (candidates, targets, requests, dispatches,
notifications, policy decisions) lives in a PostgreSQL schema of its own (``drill_<id>``),
so no real list, export, ledger or shared data can ever include it, and removing the drill
is dropping that schema. Acknowledgements of the drill's notifications are kept here
(:class:`DrillAck`) because people make them on real pages.

Times: ``sim_*`` are the drill's simulated times; everything else is wall-clock UTC.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class DrillState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Drill(models.Model):
    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="drills")
    name = models.CharField(max_length=100)
    scenario = models.JSONField(help_text="the validated scenario (drills.scenarios.Scenario)")
    seed = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=12, choices=DrillState.choices, default=DrillState.SCHEDULED, db_index=True)
    scheduled_for = models.DateTimeField(default=timezone.now, help_text="when to start (wall clock)")
    sim_start = models.DateTimeField(help_text="simulated time at the start of the drill")
    step_s = models.PositiveIntegerField(default=900, help_text="simulated seconds per step")
    steps = models.PositiveIntegerField(help_text="number of steps (duration / step)")
    speed = models.FloatField(default=0.0, help_text="simulated seconds per wall second; 0: as fast as it can")
    step = models.PositiveIntegerField(default=0, help_text="steps done")
    timeline = models.JSONField(default=list, blank=True, help_text="[[sim time, wall time]] at the start of each step")
    report = models.JSONField(default=dict, blank=True, help_text="the report, written when the drill ends")
    error = models.TextField(blank=True, default="")
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "scheduled_for"])]

    def __str__(self) -> str:
        return f"drill {self.pk} {self.name!r} ({self.state})"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding everything the drill made."""
        return f"drill_{self.pk}"

    @property
    def progress(self) -> float:
        return self.step / self.steps if self.steps else 0.0


class DrillAck(models.Model):
    """Someone acknowledged one of the drill's notifications (its id in the drill's schema)."""

    drill = models.ForeignKey(Drill, on_delete=models.CASCADE, related_name="acks")
    notification_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    acked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["drill", "notification_id", "user"], name="drills_one_ack")]

    def __str__(self) -> str:
        return f"{self.user} acknowledged {self.notification_id} of drill {self.drill_id}"
