"""Candidates: alert batches, alerts attached to TOM targets, light-curve points, filters,
watch regions, matches and trigger rules.

Units: positions are ICRS degrees, times aware UTC, magnitudes AB, fluxes nJy. Every alert
becomes one :class:`Candidate` (unique per broker and alert id) attached to a TOM ``Target``
found by a cone match on :class:`TargetSky`, the HEALPix index of target positions.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from tom_targets.models import Target

HPX_ORDER = 13
"""HEALPix (nested) order of :attr:`TargetSky.hpx`: pixels of ~26 arcsec, so a cone of up to
10 arcsec around any point lies inside its pixel and the 8 neighbours."""


class Broker(models.Model):
    """A sender of alerts. A push account (``user``) that has a broker row sends as that broker:
    its name becomes the ``broker`` of every alert it pushes."""

    name = models.CharField(max_length=64, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="broker"
    )
    description = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return self.name


class TargetSky(models.Model):
    """Where a sidereal TOM target is, indexed for cone matching (HEALPix nested, :data:`HPX_ORDER`)."""

    target = models.OneToOneField(Target, primary_key=True, on_delete=models.CASCADE, related_name="sky")
    ra = models.FloatField(help_text="ICRS degrees")
    dec = models.FloatField(help_text="ICRS degrees")
    hpx = models.BigIntegerField(db_index=True, help_text=f"HEALPix nested pixel at order {HPX_ORDER}")

    def __str__(self) -> str:
        return f"{self.target_id} at ({self.ra:.6f}, {self.dec:.6f})"


class BatchSource(models.TextChoices):
    PUSH = "push", "push (REST)"
    POLL = "poll", "poll (broker query)"
    STREAM = "stream", "stream (Kafka)"


class BatchStatus(models.TextChoices):
    RECEIVED = "received", "received"
    PROCESSING = "processing", "processing"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class AlertBatch(models.Model):
    """One batch of alerts as it arrived. The raw body is kept until the batch is processed,
    so a lost Celery message loses nothing (the reconciler re-enqueues it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(max_length=8, choices=BatchSource.choices, default=BatchSource.PUSH)
    broker = models.CharField(max_length=64, blank=True, default="", help_text="the sender's broker name, if any")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content_type = models.CharField(max_length=100)
    body = models.BinaryField(default=b"", help_text="emptied once processed")
    status = models.CharField(max_length=12, choices=BatchStatus.choices, default=BatchStatus.RECEIVED)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    n_received = models.PositiveIntegerField(default=0, help_text="alerts in the envelope")
    n_stored = models.PositiveIntegerField(default=0)
    n_duplicate = models.PositiveIntegerField(default=0)
    n_rejected = models.PositiveIntegerField(default=0)
    n_new_targets = models.PositiveIntegerField(default=0)
    n_matches = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="one entry per rejected alert")
    failure = models.TextField(blank=True, default="", help_text="why the whole batch failed")

    class Meta:
        indexes = [models.Index(fields=["status", "received_at"])]
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.source}, {self.status})"


class Candidate(models.Model):
    """One alert, attached to the TOM target it was cone-matched to (or made)."""

    broker = models.CharField(max_length=64)
    alert_id = models.CharField(max_length=128)
    object_id = models.CharField(max_length=128)
    # db_index=False: the (target, time) index below serves lookups by target (one index less per insert).
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="candidates", db_index=False)
    batch = models.ForeignKey(AlertBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates")
    time = models.DateTimeField(help_text="UTC time of the measurement")
    ra = models.FloatField(help_text="ICRS degrees")
    dec = models.FloatField(help_text="ICRS degrees")
    band = models.CharField(max_length=64)
    mag = models.FloatField(null=True, blank=True, help_text="AB")
    mag_err = models.FloatField(null=True, blank=True)
    flux = models.FloatField(null=True, blank=True, help_text="nJy (difference flux)")
    flux_err = models.FloatField(null=True, blank=True)
    classifications = models.JSONField(
        default=list, blank=True, help_text="[{classifier, version, class, score}] as the broker sent them"
    )
    rise_rate = models.FloatField(null=True, blank=True, help_text="mag/day, positive when brightening")
    galactic_lat = models.FloatField(help_text="degrees")
    separation = models.FloatField(default=0.0, help_text="arcsec from the target's position")
    schema = models.CharField(max_length=64, help_text="format and version the alert came in")
    raw = models.JSONField(default=dict, help_text="the original packet, without cutout stamps")
    received_at = models.DateTimeField(help_text="when the batch carrying it arrived")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broker", "alert_id"], name="candidate_unique_alert")]
        indexes = [models.Index(fields=["target", "time"])]

    def __str__(self) -> str:
        return f"{self.broker}:{self.alert_id}"


class LightCurvePoint(models.Model):
    """Every photometric point received, once (unique per broker and source id): an alert's own
    point and its history. Points with a magnitude are also TOM ``PhotometryReducedDatum`` rows
    (``source_location`` ``"<broker>:<source_id>"``), so TOM's light-curve plot shows them."""

    broker = models.CharField(max_length=64)
    source_id = models.CharField(max_length=128)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="lightcurve_points", db_index=False)
    time = models.DateTimeField()
    band = models.CharField(max_length=64)
    mag = models.FloatField(null=True, blank=True)
    mag_err = models.FloatField(null=True, blank=True)
    flux = models.FloatField(null=True, blank=True)
    flux_err = models.FloatField(null=True, blank=True)
    forced = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broker", "source_id"], name="lightcurvepoint_unique_source")]
        indexes = [models.Index(fields=["target", "time"])]

    def __str__(self) -> str:
        return f"{self.broker}:{self.source_id}"


def _owner_constraint(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(Q(team__isnull=False) & Q(owner__isnull=True)) | (Q(team__isnull=True) & Q(owner__isnull=False)),
        name=name,
    )


class StreamFilter(models.Model):
    """A named filter owned by a team or a user. Its predicates live in versions: an edit adds a
    version, and matches record the version they were made with."""

    name = models.CharField(max_length=100)
    team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="stream_filters")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="stream_filters"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [_owner_constraint("streamfilter_one_owner")]

    def __str__(self) -> str:
        return self.name


class StreamFilterVersion(models.Model):
    """One immutable version of a filter's predicates (see :mod:`candidates.filtering`)."""

    filter = models.ForeignKey(StreamFilter, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    predicates = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["filter", "version"], name="filterversion_unique")]
        ordering = ["filter", "-version"]

    def __str__(self) -> str:
        return f"{self.filter_id} v{self.version}"


class RegionKind(models.TextChoices):
    CONE = "cone", "cone"
    POLYGON = "polygon", "polygon"
    MOC = "moc", "MOC / HEALPix sky map"


class WatchRegion(models.Model):
    """A sky region watched by a team or a user: a cone, a polygon or a MOC (e.g. a sky map's
    90% credible region). Its HEALPix cells (:class:`WatchRegionCell`) index it."""

    name = models.CharField(max_length=100)
    team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="watch_regions")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="watch_regions"
    )
    kind = models.CharField(max_length=8, choices=RegionKind.choices)
    spec = models.JSONField(help_text="cone: {ra, dec, radius}; polygon: {vertices}; moc: {moc} (degrees)")
    version = models.PositiveIntegerField(default=1)
    area = models.FloatField(default=0.0, help_text="square degrees (of the indexed cells)")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [_owner_constraint("watchregion_one_owner")]

    def __str__(self) -> str:
        return self.name


class WatchRegionCell(models.Model):
    """One HEALPix cell of a watch region, as a MOC ``uniq`` number (4 * 4**order + nested pixel)."""

    region = models.ForeignKey(WatchRegion, on_delete=models.CASCADE, related_name="cells")
    uniq = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"{self.region_id}: {self.uniq}"


class Match(models.Model):
    """An alert that passed a filter or fell in a watch region, with the version that matched."""

    # Indexes are few on purpose (every alert may add several matches): the unique constraints
    # lead with candidate, and the composite indexes below lead with team and owner.
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="matches", db_index=False)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="candidate_matches")
    team = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="candidate_matches", db_index=False
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="candidate_matches",
        db_index=False,
    )
    filter = models.ForeignKey(StreamFilter, null=True, blank=True, on_delete=models.CASCADE, related_name="matches")
    filter_version = models.ForeignKey(
        StreamFilterVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="matches", db_index=False
    )
    region = models.ForeignKey(WatchRegion, null=True, blank=True, on_delete=models.CASCADE, related_name="matches")
    region_version = models.PositiveIntegerField(null=True, blank=True)
    matched_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "filter"], condition=Q(filter__isnull=False), name="match_unique_filter"
            ),
            models.UniqueConstraint(
                fields=["candidate", "region"], condition=Q(region__isnull=False), name="match_unique_region"
            ),
            models.CheckConstraint(
                condition=(Q(filter__isnull=False) & Q(region__isnull=True))
                | (Q(filter__isnull=True) & Q(region__isnull=False)),
                name="match_filter_or_region",
            ),
        ]
        indexes = [models.Index(fields=["team", "-matched_at"]), models.Index(fields=["owner", "-matched_at"])]

    def __str__(self) -> str:
        return f"match {self.pk} of candidate {self.candidate_id}"


class TeamRequestDefaults(models.Model):
    """A team's defaults for observing requests made by its trigger rules."""

    team = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="request_defaults")
    defaults = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"request defaults of {self.team_id}"


class RuleKind(models.TextChoices):
    MATCH = "match", "every match"
    MICROLENSING = "microlensing", "microlensing (point-lens fit priority)"
    MANUAL = "manual", "one-click request from the candidates page"


class TriggerRule(models.Model):
    """Turns matches of a filter or region into observing requests, once per target."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="trigger_rules")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=RuleKind.choices, default=RuleKind.MATCH)
    filter = models.ForeignKey(
        StreamFilter, null=True, blank=True, on_delete=models.CASCADE, related_name="trigger_rules"
    )
    region = models.ForeignKey(
        WatchRegion, null=True, blank=True, on_delete=models.CASCADE, related_name="trigger_rules"
    )
    min_priority = models.FloatField(
        default=0.02, help_text="microlensing: least follow-up priority in [0, 1] (0 would let a spent event fire)"
    )
    request_defaults = models.JSONField(default=dict, blank=True, help_text="overrides the team's defaults")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class FiringStatus(models.TextChoices):
    PENDING = "pending", "pending"
    REQUESTED = "requested", "request created"
    RECORDED = "recorded", "recorded (no request factory configured)"
    FAILED = "failed", "failed"


class TriggerFiring(models.Model):
    """A rule that fired for a target: at most once per (rule, target) and per (rule, alert)."""

    rule = models.ForeignKey(TriggerRule, on_delete=models.CASCADE, related_name="firings")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="trigger_firings")
    candidate = models.ForeignKey(Candidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="firings")
    match = models.ForeignKey(Match, null=True, blank=True, on_delete=models.SET_NULL, related_name="firings")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    priority = models.FloatField(null=True, blank=True)
    cadence = models.DurationField(null=True, blank=True)
    fit = models.JSONField(default=dict, blank=True, help_text="microlensing fit with its model name and version")
    request_params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=FiringStatus.choices, default=FiringStatus.PENDING)
    request_ref = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "target"], name="firing_unique_rule_target"),
            models.UniqueConstraint(fields=["rule", "candidate"], name="firing_unique_rule_candidate"),
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} for target {self.target_id} ({self.status})"


class BrokerPoll(models.Model):
    """A TOM saved broker query run on a schedule; its results go through the ingest pipeline."""

    query = models.OneToOneField("tom_alerts.BrokerQuery", on_delete=models.CASCADE, related_name="baton_poll")
    enabled = models.BooleanField(default=True)
    every = models.DurationField(default=timedelta(minutes=10))
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"poll of query {self.query_id}"


# --------------------------------------------------------------------------------------
# The selection-function ledger and vetting


class LedgerSnapshot(models.Model):
    """The filter versions and watch-region versions active when a chunk of alerts was ingested.

    Many chunks share one snapshot (it is unique by content); a :class:`LedgerEntry` records its
    candidate's outcome for each filter in :attr:`filter_versions`' order and the regions it
    fell in, so a region of :attr:`regions` that is not among them is one it fell outside.
    """

    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of the contents")
    filter_versions = ArrayField(models.BigIntegerField(), default=list, help_text="StreamFilterVersion ids, in order")
    regions = ArrayField(models.BigIntegerField(), default=list, help_text="active WatchRegion ids")
    region_versions = ArrayField(models.IntegerField(), default=list, help_text="their versions, same order")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"snapshot {self.pk}: {len(self.filter_versions)} filters, {len(self.regions)} regions"


class LedgerEntry(models.Model):
    """The filter and region part of one candidate's fate, written by ingest (one row per candidate).

    ``filter_fail`` holds one signed byte per filter version of the snapshot, in its order: -1 when
    the candidate passed, else the index of the first predicate it failed (predicates are at most
    50, see :mod:`candidates.filtering`). Later stages (trigger, planner, observation, labels) are
    joined at read time (:mod:`candidates.ledger`). A candidate ingested before the ledger existed
    has an entry without a snapshot.
    """

    candidate = models.OneToOneField(Candidate, primary_key=True, on_delete=models.CASCADE, related_name="ledger")
    ingested_at = models.DateTimeField(help_text="when its chunk was stored (the ledger's period is over this)")
    # No database constraint: a foreign-key check per row would share-lock the one hot snapshot row
    # from every ingest worker at once; snapshots are never deleted (PROTECT in the ORM).
    snapshot = models.ForeignKey(LedgerSnapshot, null=True, blank=True, on_delete=models.PROTECT, db_index=False,
                                 db_constraint=False, related_name="+")
    filter_fail = models.BinaryField(default=b"", help_text="int8 per snapshot filter: -1 passed, else first failing clause")
    region_hits = ArrayField(models.BigIntegerField(), default=list, help_text="snapshot regions the alert fell in")

    class Meta:
        # (time, id): a period's first and last candidate ids come from an index-only scan.
        indexes = [models.Index(fields=["ingested_at", "candidate"], name="ledgerentry_period")]

    def __str__(self) -> str:
        return f"ledger of candidate {self.candidate_id}"


class Verdict(models.TextChoices):
    REAL = "real", "real"
    BOGUS = "bogus", "bogus"


class CandidateLabel(models.Model):
    """A team member's label of a candidate (vetting): one current label per (candidate, team, user),
    changed in place (``updated_at`` says when). The team's label of a candidate is its members'
    most recently changed one."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="labels", db_index=False)
    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="candidate_labels", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="candidate_labels")
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True, default="")
    label_class = models.CharField(max_length=64, blank=True, default="", help_text="e.g. SN Ia, microlensing, CV")
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["candidate", "team", "user"], name="candidatelabel_unique_per_user"),
        ]
        indexes = [models.Index(fields=["team", "candidate"])]

    def __str__(self) -> str:
        return f"{self.verdict or self.label_class or 'note'} on {self.candidate_id} by {self.user_id}"
