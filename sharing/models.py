"""Destinations a team pushes its released data to, and the outbox of what goes there.

A ``Destination`` is another Baton or TOM (TOM Toolkit's REST API: ``api/targets/`` and
``api/reduceddatums/``, as TOM's ``DATA_SHARING`` destinations are) or Hermes (its
``api/v0/submit_message/``). Its credentials live here, on the server, and are never
shown by the API or written into the policy document, which names destinations only.

An ``OutboxItem`` is one datum for one destination, written before anything is sent
(unique per destination and datum, so a datum reaches a destination once)::

    pending ─> sending ─> sent
                  └──> retrying ─> sending ...   (transient failure: exponential backoff)
                  └──> failed                    (permanent failure, or out of attempts)
    withheld                                     (the door refused it at send time: never sent;
                                                  queued again if the datum is released again)

Times are aware UTC datetimes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone


class DestinationKind(models.TextChoices):
    TOM = "tom", "Another Baton or TOM (TOM Toolkit REST API)"
    HERMES = "hermes", "Hermes (SCiMMA)"


class Destination(models.Model):
    """Where a team's released data is pushed. ``name`` is what the policy document names."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="baton_sharing_destinations")
    name = models.SlugField(max_length=80, help_text="what the team's policy names (sharing.<kind>.destinations)")
    kind = models.CharField(max_length=16, choices=DestinationKind.choices)
    base_url = models.URLField(max_length=500, help_text="e.g. https://tom.example.org/ or https://hermes.lco.global/")
    token = models.CharField(max_length=500, blank=True, default="", help_text="API token (Authorization: Token ...)")
    username = models.CharField(max_length=150, blank=True, default="", help_text="HTTP basic auth, with password")
    password = models.CharField(max_length=500, blank=True, default="")
    topic = models.CharField(max_length=200, blank=True, default="", help_text="Hermes topic, e.g. hermes.test")
    authors = models.CharField(max_length=1000, blank=True, default="", help_text="Hermes message authors")
    enabled = models.BooleanField(default=True)
    failure_notified_at = models.DateTimeField(
        null=True, blank=True,
        help_text="when the team was told a datum failed here for good; a later success clears it, so each "
        "episode of failures is announced once",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team", "name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="sharing_destination_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}) of {self.team}"

    @property
    def auth(self) -> str:
        """How Baton authenticates there: ``token``, ``basic`` or ``none``."""
        if self.token:
            return "token"
        if self.username:
            return "basic"
        return "none"

    @property
    def root(self) -> str:
        """``base_url`` with exactly one trailing slash."""
        return self.base_url.rstrip("/") + "/"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying after a failure"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed permanently"
    WITHHELD = "withheld", "Withheld by the policy"


SENDABLE = (OutboxStatus.PENDING, OutboxStatus.RETRYING)


class OutboxItem(models.Model):
    """One datum for one destination (see the module docstring)."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="items")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = models.ForeignKey("tom_targets.BaseTarget", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, help_text="photometry or spectra")
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    remote_id = models.CharField(max_length=200, blank=True, default="", help_text="the destination's id for it")
    policy_version_id = models.BigIntegerField(null=True, blank=True, help_text="the policies.PolicyVersion that let it out")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["destination", "content_type", "object_id"], name="sharing_once_per_destination"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="sharing_due",
                         condition=Q(status__in=["pending", "retrying", "sending"])),
            models.Index(fields=["destination", "-created_at"], name="sharing_by_destination"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} to {self.destination_id} ({self.status})"


class RemoteTarget(models.Model):
    """A target's id at a TOM destination (looked up or created once, then reused)."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey("tom_targets.BaseTarget", on_delete=models.CASCADE, related_name="+")
    remote_id = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["destination", "target"], name="sharing_one_remote_target")]

    def __str__(self) -> str:
        return f"{self.target_id} is {self.remote_id} at {self.destination_id}"
