"""Teams, their versioned policies, and the records the policies act on.

A team is a Django ``auth.Group`` (TOM's groups): membership is group
membership, so TOM's django-guardian group permissions apply to it. ``Team``
adds a slug and a description; ``TeamRole`` gives a member a role (no row:
plain member). Everything a team owns has a foreign key to ``auth.Group``.

A policy is a JSON document (schema in :mod:`policies.documents`) stored as
immutable ``PolicyVersion`` rows: every change is a new row with who and when.

Times are aware datetimes in UTC; hours are hours of telescope time.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.TextChoices):
    ADMIN = "admin", "Admin (PI)"
    MEMBER = "member", "Member"
    OBSERVER = "observer", "Observer"


class DataKind(models.TextChoices):
    """What a sharing rule applies to. A team's interest in a target is shared like its requests."""

    PHOTOMETRY = "photometry", "Photometry"
    SPECTRA = "spectra", "Spectra"
    REQUESTS = "requests", "Observation requests"


class Audience(models.TextChoices):
    """Who sees a team's data once its proprietary period is over."""

    NONE = "none", "Nobody outside the team (and its partners)"
    NETWORK = "network", "Every team of the network"
    PUBLIC = "public", "Everybody with an account"


class Team(models.Model):
    """A Baton team: one ``auth.Group`` with a slug, roles and a versioned policy."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="baton_team")
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.group.name

    @property
    def name(self) -> str:
        return self.group.name


class TeamRole(models.Model):
    """A member's role in a team. Only meaningful while the user is in the team's group."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="baton_team_roles")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="policies_one_role_per_member")]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.team}"


class AudienceGroup(models.Model):
    """The ``auth.Group`` that stands for an audience: every team member (network) or every user (public).

    Policies grant guardian permissions to these groups when data is released,
    so TOM's own pages show released data to the right people. Membership is
    kept by signals and reconciled by a periodic task.
    """

    audience = models.CharField(max_length=16, choices=[(Audience.NETWORK.value, "network"), (Audience.PUBLIC.value, "public")], unique=True)
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="baton_audience")

    def __str__(self) -> str:
        return f"{self.audience}: {self.group.name}"


class PolicyVersion(models.Model):
    """One immutable version of a team's policy. The highest ``number`` is the one in force."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="policy_versions")
    number = models.PositiveIntegerField()
    document = models.JSONField(help_text="the policy (schema: policies.documents.PolicyDocument)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    comment = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["team", "-number"]
        constraints = [models.UniqueConstraint(fields=["team", "number"], name="policies_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.team} policy v{self.number}"


class TargetInterest(models.Model):
    """A team's interest in a target (a filter matched, a request was made): the team 'owns' the target.

    Other teams see the target as the owning team's policy shares its observation requests.
    """

    target = models.ForeignKey("tom_targets.BaseTarget", on_delete=models.CASCADE, related_name="baton_interests")
    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="baton_target_interests")
    since = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=40, blank=True, default="", help_text="e.g. filter, request, manual")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "team"], name="policies_one_interest_per_team")]
        indexes = [models.Index(fields=["team", "since"])]

    def __str__(self) -> str:
        return f"{self.team} follows {self.target}"


class PolicyTargetGrant(models.Model):
    """A ``view_target`` permission the policy projection granted (so it revokes only its own).

    Other apps (TOM's forms, the candidate ingest) may grant the same permission for their own
    reasons; a grant not recorded here is never withdrawn by a policy change.
    """

    target = models.ForeignKey("tom_targets.BaseTarget", on_delete=models.CASCADE, related_name="baton_policy_grants")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="baton_policy_grants")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "group"], name="policies_one_target_grant")]

    def __str__(self) -> str:
        return f"{self.group} may see {self.target_id}"


class DataOwnership(models.Model):
    """Which team a datum (a ReducedDatum of any TOM type, or a DataProduct) belongs to.

    ``team`` null means public survey data (e.g. a public broker's alert photometry): it is
    shown to whoever may see its target. ``released_at`` is when the release audience
    (network or public) was granted the datum; null while it is proprietary.
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    datum = GenericForeignKey("content_type", "object_id")
    target = models.ForeignKey("tom_targets.BaseTarget", on_delete=models.CASCADE, related_name="baton_data_ownership")
    team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="baton_data")
    kind = models.CharField(max_length=16, choices=DataKind.choices)
    acquired_at = models.DateTimeField(help_text="when the data was taken (UTC); the proprietary period runs from here")
    recorded_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id"], name="policies_one_owner_per_datum"),
            models.CheckConstraint(condition=~Q(kind=DataKind.REQUESTS), name="policies_datum_kind_is_data"),
        ]
        indexes = [
            models.Index(fields=["team", "kind", "acquired_at"]),
            models.Index(fields=["target", "team"]),
        ]

    def __str__(self) -> str:
        return f"{self.content_type.model} {self.object_id} of {self.team or 'public survey'}"


class UsageKind(models.TextChoices):
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class UsageEntry(models.Model):
    """Telescope time charged to a team by one dispatch (idempotent by ``source_key``)."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="baton_usage")
    facility_code = models.CharField(max_length=64)
    facility_class = models.CharField(max_length=32)
    hours = models.FloatField(help_text="hours charged (a cancelled dispatch: the part that ran)")
    kind = models.CharField(max_length=16, choices=UsageKind.choices)
    source_key = models.CharField(max_length=200, unique=True)
    semester = models.CharField(max_length=8, db_index=True)
    at = models.DateTimeField()
    target = models.ForeignKey("tom_targets.BaseTarget", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    policy_version = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["team", "semester", "facility_class"])]
        constraints = [models.CheckConstraint(condition=Q(hours__gte=0), name="policies_usage_hours_nonnegative")]

    def __str__(self) -> str:
        return f"{self.team}: {self.hours:.2f} h on {self.facility_code} ({self.kind})"


class LedgerKind(models.TextChoices):
    DATA_SHARED = "data_shared", "Data given to the network"
    TIME_USED = "time_used", "Telescope time used"
    BREACH = "breach", "Recorded breach"


class BreachKind(models.TextChoices):
    WITHHELD = "withheld", "Data withheld past the policy"
    CLAIM_VIOLATION = "claim_violation", "Published on another team's active claim"


class LedgerEntry(models.Model):
    """One line of a team's contribution ledger, in credit units (positive: given; negative: taken)."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="baton_ledger")
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    breach_kind = models.CharField(max_length=24, choices=BreachKind.choices, blank=True, default="")
    amount = models.FloatField(help_text="credits; 1 credit = 1 hour of telescope time")
    quantity = models.FloatField(default=0.0, help_text="data points or hours behind the amount")
    source_key = models.CharField(max_length=200, unique=True)
    at = models.DateTimeField(db_index=True)
    reason = models.TextField(blank=True, default="")
    policy_version = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["team", "at"])]

    def __str__(self) -> str:
        return f"{self.team}: {self.kind} {self.amount:+.2f}"


class ClaimState(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACTIVE = "active", "Active"
    CONTESTED = "contested", "Contested"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


CLAIM_OPEN_STATES = (ClaimState.PROPOSED, ClaimState.ACTIVE, ClaimState.CONTESTED)


class Claim(models.Model):
    """A team's intent to analyse or publish on a target or a topic (an object class and/or a sky cone).

    Exclusive until ``exclusive_until``; lapses at ``expires_at`` (a beat task expires it).
    """

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="baton_claims")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=200)
    scope = models.TextField(blank=True, default="", help_text="what the team intends to do (analysis, paper)")
    target = models.ForeignKey("tom_targets.BaseTarget", null=True, blank=True, on_delete=models.CASCADE, related_name="baton_claims")
    object_class = models.CharField(max_length=64, blank=True, default="", help_text="a class of objects, e.g. 'microlensing'")
    ra = models.FloatField(null=True, blank=True, help_text="cone centre, deg (ICRS)")
    dec = models.FloatField(null=True, blank=True, help_text="cone centre, deg (ICRS)")
    radius_deg = models.FloatField(null=True, blank=True, help_text="cone radius, deg")
    exclusive_until = models.DateTimeField()
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=ClaimState.choices, default=ClaimState.PROPOSED, db_index=True)
    policy_version = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(target__isnull=False) | ~Q(object_class="") | Q(radius_deg__isnull=False),
                name="policies_claim_has_a_subject",
            ),
            models.CheckConstraint(
                condition=(Q(ra__isnull=True) & Q(dec__isnull=True) & Q(radius_deg__isnull=True))
                | (Q(ra__gte=0) & Q(ra__lt=360) & Q(dec__gte=-90) & Q(dec__lte=90) & Q(radius_deg__gt=0) & Q(radius_deg__lte=180)),
                name="policies_claim_cone_complete",
            ),
            models.CheckConstraint(condition=Q(exclusive_until__lte=models.F("expires_at")), name="policies_claim_exclusive_within_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.team}, {self.state})"


class ConsentDecision(models.TextChoices):
    PENDING = "pending", "Pending"
    AGREED = "agreed", "Agreed"
    DECLINED = "declined", "Declined"


class ClaimConsent(models.Model):
    """The agreement a claim needs from a team that owns its target (when that team's policy says so)."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="consents")
    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=16, choices=ConsentDecision.choices, default=ConsentDecision.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    policy_version = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["claim", "team"], name="policies_one_consent_per_team")]

    def __str__(self) -> str:
        return f"{self.team} on claim {self.claim_id}: {self.decision}"


class ClaimConflict(models.Model):
    """Two overlapping claims of different teams (``claim_a.pk < claim_b.pk``); open until resolved."""

    claim_a = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="+")
    claim_b = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200)
    detected_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["claim_a", "claim_b"], name="policies_one_conflict_per_pair"),
            models.CheckConstraint(condition=Q(claim_a__lt=models.F("claim_b")), name="policies_conflict_ordered"),
        ]

    def __str__(self) -> str:
        return f"claims {self.claim_a_id} and {self.claim_b_id}: {self.reason}"


class ClaimTransition(models.Model):
    """One recorded change of a claim's state."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=300, blank=True, default="")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"claim {self.claim_id}: {self.from_state or '-'} -> {self.to_state}"


class Publication(models.Model):
    """A publication a team reports (paper, ATel, TNS classification); checked against others' claims."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="baton_publications")
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=300)
    reference = models.CharField(max_length=200, blank=True, default="", help_text="e.g. an arXiv id or ATel number")
    target = models.ForeignKey("tom_targets.BaseTarget", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    object_class = models.CharField(max_length=64, blank=True, default="")
    ra = models.FloatField(null=True, blank=True)
    dec = models.FloatField(null=True, blank=True)
    radius_deg = models.FloatField(null=True, blank=True)
    published_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.team})"


class PolicyDecision(models.Model):
    """One decision a policy made, with the version that made it: the audit trail."""

    class Action(models.TextChoices):
        READ = "read", "Read"
        NOTIFY = "notify", "Notification"
        CLAIM = "claim", "Claim"
        ALLOCATION = "allocation", "Allocation"
        RELEASE = "release", "Data release"
        POLICY = "policy", "Policy change"
        MEMBERSHIP = "membership", "Membership"
        BREACH = "breach", "Breach"
        TRIGGER = "trigger", "Trigger"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="baton_decisions",
                             help_text="the team whose policy decided")
    policy_version = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             help_text="who asked, or who was notified")
    action = models.CharField(max_length=16, choices=Action.choices)
    decision = models.CharField(max_length=24, help_text="allow, deny, sent, suppressed, refuse, queue, conflict, ...")
    object_type = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["team", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.decision} ({self.object_type} {self.object_id})"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Waiting for delivery"
    HELD = "held", "Held (quiet hours)"
    DIGEST = "digest", "Waiting for the digest"
    DELIVERED = "delivered", "Delivered"


class InboxNotification(models.Model):
    """A notification for one person on one channel, until the notifications app delivers it.

    The inbox channel is delivered here at once (the inbox is the channel); other
    channels wait with ``pending``/``held``/``digest`` for a delivery backend.
    """

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="baton_inbox")
    team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                             help_text="the team whose rule sent it")
    event = models.CharField(max_length=64)
    channel = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    rule_index = models.IntegerField(null=True, blank=True, help_text="the rule's position in the policy; null: default rule")
    deliver_after = models.DateTimeField(null=True, blank=True, help_text="end of quiet hours, for held notifications")
    digest = models.CharField(max_length=16, blank=True, default="")
    decision = models.ForeignKey(PolicyDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["recipient", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.event} for {self.recipient_id} on {self.channel} ({self.status})"
