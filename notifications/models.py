"""The outbox and the preferences: a notification is a row before it is a message.

``Notification`` is one event for one person on one channel at one address
(an email address, a Slack destination, the person's inbox). Its status says
where it is on the way out::

    pending ─> sending ─> sent
       │          └──> retrying ─> sending ...      (transient failure: backoff)
       │          └──> failed                       (permanent failure, or out of attempts)
       ├─> held ─> pending                          (quiet hours: until they end)
       └─> digested  (folded into a digest row, which is itself sent like any other)
    suppressed                                      (the policy door refused it: never sent)

A digest is a ``Notification`` with ``digest_kind`` set and event ``digest``:
``open`` while it collects, then ``pending`` and on as above. At most one digest
per (channel, address, kind) is open at a time (a partial unique constraint).

``dedupe_key`` stops the same event reaching the same address twice on one
channel (a unique constraint). Times are aware UTC datetimes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as tz


class Status(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    HELD = "held", "Held (quiet hours)"
    OPEN = "open", "Digest collecting"
    DIGESTED = "digested", "In a digest"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying after a failure"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed permanently"
    SUPPRESSED = "suppressed", "Suppressed by policy"


# States a worker may pick a row up in; states nothing will change any more.
SENDABLE = (Status.PENDING, Status.RETRYING)
FINAL = (Status.SENT, Status.FAILED, Status.SUPPRESSED)


class DigestKind(models.TextChoices):
    BURST = "burst", "Burst"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
    QUIET = "quiet", "After quiet hours"


class Digest(models.TextChoices):
    """How often a person wants non-urgent notifications (a policy rule may ask for less often)."""

    IMMEDIATE = "immediate", "As they happen"
    HOURLY = "hourly", "Hourly digest"
    DAILY = "daily", "Daily digest"


class Notification(models.Model):
    """One event for one person on one channel at one address: an outbox row (see the module docstring)."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="baton_notifications")
    team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             help_text="the team whose rule chose the recipient; empty for personal ones and digests")
    event = models.CharField(max_length=64, db_index=True)
    channel = models.CharField(max_length=32)
    address = models.CharField(max_length=320, help_text="where it goes: an email address, a Slack destination, user:<id>")
    personal = models.BooleanField(default=True, help_text="the recipient's own address (their quiet hours apply), not a team's")
    payload = models.JSONField(default=dict, blank=True)
    urgent = models.BooleanField(default=False)
    dedupe_key = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    digest_kind = models.CharField(max_length=16, choices=DigestKind.choices, blank=True, default="",
                                   help_text="set on digest rows only")
    digest = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="items",
                               help_text="the digest this notification was folded into")
    rule = models.CharField(max_length=200, blank=True, default="", help_text="which rule chose it, for the record")
    policy_version_id = models.BigIntegerField(null=True, blank=True, help_text="the policies.PolicyVersion that decided")
    created_at = models.DateTimeField(default=tz.now)
    not_before = models.DateTimeField(null=True, blank=True, help_text="held until / digest due at")
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=200, blank=True, default="", help_text="Message-ID, Slack ts, ...")
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "address", "dedupe_key"], condition=~Q(dedupe_key=""),
                                    name="notifications_dedupe"),
            models.UniqueConstraint(fields=["channel", "address", "digest_kind"], condition=Q(status="open"),
                                    name="notifications_one_open_digest"),
            models.CheckConstraint(condition=Q(digest_kind="") | Q(digest__isnull=True), name="notifications_digest_not_nested"),
        ]
        indexes = [
            models.Index(fields=["recipient", "channel", "-created_at"], name="notif_inbox"),
            models.Index(fields=["channel", "address", "created_at"], name="notif_rate"),
            models.Index(fields=["status", "not_before"], name="notif_due", condition=Q(status__in=["held", "open"])),
            models.Index(fields=["status", "next_attempt_at"], name="notif_retry",
                         condition=Q(status__in=["pending", "retrying", "sending"])),
        ]

    def __str__(self) -> str:
        what = f"{self.digest_kind} digest" if self.digest_kind else self.event
        return f"{what} for {self.recipient_id} on {self.channel} ({self.status})"

    @property
    def is_digest(self) -> bool:
        return bool(self.digest_kind)


class Preference(models.Model):
    """A person's own notification preferences, within what their teams' rules allow.

    They can only narrow: turn a channel off, mute events, keep quiet hours (in
    their time zone; urgent events still come through), ask for digests, and say
    where their own Slack messages go. No row: the defaults from settings.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="baton_notification_preference")
    timezone = models.CharField(max_length=64, blank=True, default="", help_text="IANA time zone; empty: the site default")
    quiet_start = models.TimeField(null=True, blank=True, help_text="local time quiet hours begin")
    quiet_end = models.TimeField(null=True, blank=True, help_text="local time quiet hours end")
    digest = models.CharField(max_length=16, choices=Digest.choices, default=Digest.IMMEDIATE)
    digest_hour = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(23)],
                                                   help_text="local hour of the daily digest; empty: the site default")
    email_enabled = models.BooleanField(default=True)
    slack_enabled = models.BooleanField(default=True)
    muted_events = models.JSONField(default=list, blank=True, help_text="event names never to notify")
    slack_webhook_url = models.URLField(max_length=500, blank=True, default="", help_text="your own Slack incoming webhook")
    slack_member_id = models.CharField(max_length=32, blank=True, default="",
                                       help_text="your Slack member id (U…): the Baton bot messages you directly")
    updated_at = models.DateTimeField(default=tz.now)

    def __str__(self) -> str:
        return f"notification preferences of {self.user_id}"


class TeamSlack(models.Model):
    """Where a team's Slack notifications go: its own incoming webhook, or a channel the Baton bot posts to."""

    team = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="baton_slack")
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    channel = models.CharField(max_length=80, blank=True, default="", help_text="channel id or #name for the bot token")
    updated_at = models.DateTimeField(default=tz.now)

    class Meta:
        verbose_name = "team Slack destination"

    def __str__(self) -> str:
        return f"Slack of {self.team}"
