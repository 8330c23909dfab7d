"""The policy document: a team's policy as validated JSON (stored) and typed dataclasses (used).

A document has four parts::

    {
      "schema": 1,
      "sharing": {            # per data kind: photometry, spectra, requests
        "photometry": {"partners": ["team-b"], "proprietary_days": 30, "release_to": "network",
                       "destinations": ["partner-tom", "hermes"]},
        ...
      },
      "publication": {"guidelines": "...", "claims_need_agreement": true},
      "time": {"overrun_action": "refuse" | "queue", "unallocated_action": "allow" | "refuse" | "queue",
               "allocations": [{"facility_class": "1m0", "facility_code": "", "semester": "2026A", "hours": 40}]},
      "notifications": [{"event": "claim.overlap", "roles": ["admin"], "users": [], "channels": ["inbox"],
                         "conditions": [{"field": "magnitude", "op": "lt", "value": 18}],
                         "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
                         "quiet_action": "hold" | "digest" | "drop", "digest": "immediate" | "hourly" | "daily",
                         "urgent_bypasses_quiet": true}]
    }

Sharing reads: the team's own members always see its data; named ``partners``
(team slugs) see it at once; everybody in ``release_to`` (``network``: every
team member; ``public``: every user; ``none``: nobody) sees it
``proprietary_days`` after it was taken. Real-time sharing with the network is
``proprietary_days = 0, release_to = "network"``.

``destinations`` (photometry and spectra) names the team's sharing destinations
(another Baton or TOM, Hermes: rows of the ``sharing`` app, whose credentials
stay on the server, never in this document) that get the data pushed to them
as soon as it is released; they never shorten the proprietary period, and a
rule that releases nothing (``release_to = "none"``) may name none.

:class:`PolicyDocumentSerializer` validates a document (the API and the edit
form both use it); :meth:`PolicyDocument.from_json` turns a validated document
into dataclasses.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from rest_framework import serializers

from .fields import MAX_INT_ID, StrictBooleanField, StrictFloatField, StrictSlugField, object_id, text
from .models import Audience, DataKind, Role

SCHEMA_VERSION = 1

# The events a notification rule may name, with what they mean. Other apps announce them
# through policies.hooks.notify; the notifications app delivers them.
EVENTS: dict[str, str] = {
    "candidate.new": "a candidate passed one of the team's filters",
    "trigger.fired": "a trigger rule submitted a request for the team",
    "request.submitted": "an observing request of the team was submitted",
    "request.dispatched": "a request was sent to one or more facilities",
    "request.completed": "a request was observed",
    "request.failed": "a request failed and could not be re-planned",
    "request.replanned": "a request was re-planned onto other facilities",
    "request.expired": "a request's window ended before it was observed",
    "data.new": "new data arrived on a target of the team",
    "data.released": "data of the team left its proprietary period",
    "claim.proposed": "a claim was proposed",
    "claim.consent_needed": "another team claims a target of the team and needs its agreement",
    "claim.overlap": "two teams' claims overlap",
    "claim.state_changed": "a claim of the team changed state",
    "allocation.overrun": "a request would overrun, or usage overran, the team's allocation",
    "policy.changed": "the team's policy changed",
    "breach.recorded": "a breach of policy by the team was recorded",
    "sharing.failed": "data could not be pushed to one of the team's sharing destinations (announced once until it works again)",
}

CONDITION_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "in": lambda value, options: value in options,
    "contains": lambda value, item: item in value,
}

OVERRUN_ACTIONS = ("refuse", "queue")
UNALLOCATED_ACTIONS = ("allow", "refuse", "queue")
QUIET_ACTIONS = ("hold", "digest", "drop")
DIGESTS = ("immediate", "hourly", "daily")


# --- dataclasses ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SharingRule:
    """How one kind of a team's data is shared (see the module docstring)."""

    partners: tuple[str, ...] = ()
    proprietary_days: float = 0.0
    release_to: str = Audience.NONE.value
    destinations: tuple[str, ...] = ()

    @property
    def proprietary(self) -> timedelta:
        return timedelta(days=self.proprietary_days)

    def release_at(self, acquired_at: datetime) -> datetime | None:
        """When data taken at ``acquired_at`` reaches ``release_to``; None if it never does."""
        if self.release_to == Audience.NONE:
            return None
        return acquired_at + self.proprietary

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"partners": list(self.partners), "proprietary_days": self.proprietary_days,
                                "release_to": self.release_to}
        if self.destinations:  # absent rather than empty: documents written before destinations read the same
            data["destinations"] = list(self.destinations)
        return data


@dataclass(frozen=True)
class PublicationRules:
    guidelines: str = ""
    claims_need_agreement: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"guidelines": self.guidelines, "claims_need_agreement": self.claims_need_agreement}


@dataclass(frozen=True)
class Allocation:
    """Hours of one facility class (any facility of it, or only ``facility_code``) in one semester."""

    facility_class: str
    semester: str
    hours: float
    facility_code: str = ""
    proposal: str = ""  # the team's proposal at the facility (its portal's proposal id); "" = none named here

    def to_json(self) -> dict[str, Any]:
        return {"facility_class": self.facility_class, "facility_code": self.facility_code,
                "semester": self.semester, "hours": self.hours, "proposal": self.proposal}


@dataclass(frozen=True)
class TimeRules:
    overrun_action: str = "refuse"
    unallocated_action: str = "allow"
    allocations: tuple[Allocation, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"overrun_action": self.overrun_action, "unallocated_action": self.unallocated_action,
                "allocations": [a.to_json() for a in self.allocations]}


@dataclass(frozen=True)
class QuietHours:
    """A daily window in a time zone; ``start > end`` wraps past midnight; ``start == end`` is empty."""

    start: time
    end: time
    timezone: str

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, at: datetime) -> datetime:
        """The first end of the window after ``at`` (aware, in the zone's wall time)."""
        local = at.astimezone(ZoneInfo(self.timezone))
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end = end + timedelta(days=1)
        return end

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M"), "timezone": self.timezone}


@dataclass(frozen=True)
class Condition:
    """``payload[field] <op> value``; ``field`` may be dotted (``alert.magnitude``)."""

    field: str
    op: str
    value: Any

    def holds(self, payload: Mapping[str, Any]) -> bool:
        current: Any = payload
        for part in self.field.split("."):
            if not isinstance(current, Mapping) or part not in current:
                return False  # a condition on a missing field does not hold
            current = current[part]
        try:
            return bool(CONDITION_OPS[self.op](current, self.value))
        except TypeError:
            return False  # e.g. "lt" between a string and a number

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class NotificationRule:
    """Who hears of an event, on which channels, under which conditions, and when."""

    event: str
    roles: tuple[str, ...] = (Role.ADMIN.value,)
    users: tuple[int, ...] = ()
    channels: tuple[str, ...] = ("inbox",)
    conditions: tuple[Condition, ...] = ()
    quiet_hours: QuietHours | None = None
    quiet_action: str = "hold"
    digest: str = "immediate"
    urgent_bypasses_quiet: bool = True

    def matches(self, payload: Mapping[str, Any]) -> bool:
        """Whether every condition holds for this event's payload."""
        return all(condition.holds(payload) for condition in self.conditions)

    def is_quiet(self, at: datetime, payload: Mapping[str, Any]) -> bool:
        """Whether a notification at ``at`` falls in quiet hours (an urgent one may bypass them)."""
        if self.quiet_hours is None:
            return False
        if self.urgent_bypasses_quiet and payload.get("urgent") is True:
            return False
        return self.quiet_hours.contains(at)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event, "roles": list(self.roles), "users": list(self.users), "channels": list(self.channels),
            "conditions": [c.to_json() for c in self.conditions],
            "quiet_hours": self.quiet_hours.to_json() if self.quiet_hours else None,
            "quiet_action": self.quiet_action, "digest": self.digest, "urgent_bypasses_quiet": self.urgent_bypasses_quiet,
        }


def _default_sharing() -> dict[str, SharingRule]:
    return {kind.value: SharingRule() for kind in DataKind}


@dataclass(frozen=True)
class PolicyDocument:
    """A whole policy. The default keeps everything inside the team (fail closed)."""

    sharing: Mapping[str, SharingRule] = field(default_factory=_default_sharing)
    publication: PublicationRules = PublicationRules()
    time: TimeRules = TimeRules()
    notifications: tuple[NotificationRule, ...] = ()

    def rule(self, kind: str) -> SharingRule:
        return self.sharing.get(kind, SharingRule())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "sharing": {kind: self.rule(kind).to_json() for kind in DataKind.values},
            "publication": self.publication.to_json(),
            "time": self.time.to_json(),
            "notifications": [rule.to_json() for rule in self.notifications],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyDocument:
        """Build from a stored (already validated) document; absent parts take their defaults."""
        sharing = {
            kind: SharingRule(
                partners=tuple(rule.get("partners", ())),
                proprietary_days=float(rule.get("proprietary_days", 0.0)),
                release_to=rule.get("release_to", Audience.NONE.value),
                destinations=tuple(rule.get("destinations", ())),
            )
            for kind, rule in (data.get("sharing") or {}).items()
        }
        publication = data.get("publication") or {}
        time_rules = data.get("time") or {}
        return cls(
            sharing={**_default_sharing(), **sharing},
            publication=PublicationRules(
                guidelines=publication.get("guidelines", ""),
                claims_need_agreement=bool(publication.get("claims_need_agreement", True)),
            ),
            time=TimeRules(
                overrun_action=time_rules.get("overrun_action", "refuse"),
                unallocated_action=time_rules.get("unallocated_action", "allow"),
                allocations=tuple(
                    Allocation(facility_class=a["facility_class"], facility_code=a.get("facility_code", ""),
                               semester=a["semester"], hours=float(a["hours"]), proposal=a.get("proposal", ""))
                    for a in time_rules.get("allocations", ())
                ),
            ),
            notifications=tuple(_rule_from_json(rule) for rule in data.get("notifications", ())),
        )


def _parse_time(value: str | time) -> time:
    return value if isinstance(value, time) else time.fromisoformat(value)


def _rule_from_json(data: Mapping[str, Any]) -> NotificationRule:
    quiet = data.get("quiet_hours")
    return NotificationRule(
        event=data["event"],
        roles=tuple(data.get("roles", (Role.ADMIN.value,))),
        users=tuple(int(u) for u in data.get("users", ())),
        channels=tuple(data.get("channels", ("inbox",))),
        conditions=tuple(Condition(field=c["field"], op=c["op"], value=c.get("value")) for c in data.get("conditions", ())),
        quiet_hours=QuietHours(start=_parse_time(quiet["start"]), end=_parse_time(quiet["end"]), timezone=quiet["timezone"])
        if quiet else None,
        quiet_action=data.get("quiet_action", "hold"),
        digest=data.get("digest", "immediate"),
        urgent_bypasses_quiet=bool(data.get("urgent_bypasses_quiet", True)),
    )


# --- validation -----------------------------------------------------------------------------


def notification_channels() -> dict[str, str]:
    """The configured channels (name -> dotted path), read when needed, never at import."""
    return dict(getattr(settings, "BATON_POLICIES", {}).get("NOTIFICATION_CHANNELS", {"inbox": "policies.hooks.InboxChannel"}))


class SharingRuleSerializer(serializers.Serializer):
    partners = serializers.ListField(child=StrictSlugField(max_length=80), max_length=50, default=list,
                                     help_text="slugs of partner teams that see this data at once")
    proprietary_days = StrictFloatField(min_value=0, max_value=36500, default=0.0,
                                              help_text="days after acquisition before release_to sees the data")
    release_to = serializers.ChoiceField(choices=Audience.choices, default=Audience.NONE.value)
    destinations = serializers.ListField(
        child=StrictSlugField(max_length=80), max_length=20, required=False,
        help_text="names of the team's sharing destinations that get this data pushed once it is released "
                  "(photometry and spectra only)",
    )

    def validate_destinations(self, value: list[str]) -> list[str]:
        if len(value) != len(set(value)):
            raise serializers.ValidationError("each destination may be named once")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("destinations") and attrs.get("release_to", Audience.NONE.value) == Audience.NONE:
            raise serializers.ValidationError(
                {"destinations": "only released data leaves Baton: set release_to to network or public first"})
        return attrs


class SharingSerializer(serializers.Serializer):
    photometry = SharingRuleSerializer(required=False)
    spectra = SharingRuleSerializer(required=False)
    requests = SharingRuleSerializer(required=False, help_text="observation requests and the team's interest in targets")


class PublicationSerializer(serializers.Serializer):
    guidelines = text(allow_blank=True, max_length=20000, default="", trim_whitespace=False)
    claims_need_agreement = StrictBooleanField(default=True,
                                                     help_text="claims by others on the team's targets need its agreement")


class AllocationSerializer(serializers.Serializer):
    facility_class = text(max_length=32)
    facility_code = text(max_length=64, allow_blank=True, default="",
                                          help_text="empty: any facility of the class")
    semester = serializers.RegexField(r"^\d{4}[AB]$", max_length=5, help_text="e.g. 2026A (Feb-Jul) or 2026B (Aug-Jan)")
    hours = StrictFloatField(min_value=0, max_value=100000)
    proposal = serializers.RegexField(
        r"^[A-Za-z0-9._-]*$", max_length=64, allow_blank=True, default="",
        help_text="the team's proposal id on the facility's portal (sent with every request there); "
        "empty: the facility's default proposal",
    )


class TimeSerializer(serializers.Serializer):
    overrun_action = serializers.ChoiceField(choices=OVERRUN_ACTIONS, default="refuse")
    unallocated_action = serializers.ChoiceField(choices=UNALLOCATED_ACTIONS, default="allow",
                                                 help_text="what a request on a class without an allocation gets")
    allocations = AllocationSerializer(many=True, default=list, max_length=500)  # type: ignore[call-arg]  # passed on to the ListSerializer; the stubs omit it

    def validate_allocations(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [(a["facility_class"], a.get("facility_code", ""), a["semester"]) for a in value]
        if len(keys) != len(set(keys)):
            raise serializers.ValidationError("each (facility_class, facility_code, semester) may appear once")
        return value


class QuietHoursSerializer(serializers.Serializer):
    start = serializers.TimeField(format="%H:%M")
    end = serializers.TimeField(format="%H:%M")
    timezone = text(max_length=64, help_text="IANA time zone, e.g. Europe/Berlin")

    def validate_timezone(self, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise serializers.ValidationError(f"unknown time zone {value!r}") from exc
        return value


class ConditionSerializer(serializers.Serializer):
    field = serializers.RegexField(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", max_length=100)
    op = serializers.ChoiceField(choices=sorted(CONDITION_OPS))
    value = serializers.JSONField()


class NotificationRuleSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=sorted(EVENTS))
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), default=list, max_length=3)
    users = serializers.ListField(child=object_id(max_value=MAX_INT_ID), default=list, max_length=100,
                                  help_text="ids of team members")
    channels = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1, max_length=10)
    conditions = ConditionSerializer(many=True, default=list, max_length=20)  # type: ignore[call-arg]  # passed on to the ListSerializer; the stubs omit it
    quiet_hours = QuietHoursSerializer(required=False, allow_null=True, default=None)
    quiet_action = serializers.ChoiceField(choices=QUIET_ACTIONS, default="hold")
    digest = serializers.ChoiceField(choices=DIGESTS, default="immediate")
    urgent_bypasses_quiet = StrictBooleanField(default=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The configured channels, read when a serializer is made (the schema shows them as an enum).
        channels = self.fields["channels"]
        assert isinstance(channels, serializers.ListField)  # noqa: S101 - declared above
        channels.child = serializers.ChoiceField(choices=sorted(notification_channels()))
        channels.child.bind(field_name="", parent=channels)  # type: ignore[arg-type]  # as ListField.__init__ does; the stubs want a serializer

    def validate_channels(self, value: list[str]) -> list[str]:
        known = notification_channels()
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise serializers.ValidationError(f"unknown channel(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("roles") and not attrs.get("users"):
            raise serializers.ValidationError("a rule needs at least one role or one user")
        return attrs


class PolicyDocumentSerializer(serializers.Serializer):
    """A whole policy document. ``context['team']`` (a Team) enables the checks against the database."""

    schema = serializers.IntegerField(default=SCHEMA_VERSION, min_value=SCHEMA_VERSION, max_value=SCHEMA_VERSION)
    sharing = SharingSerializer(required=False)
    publication = PublicationSerializer(required=False)
    time = TimeSerializer(required=False)
    notifications = NotificationRuleSerializer(many=True, default=list, max_length=100)  # type: ignore[call-arg]  # passed on to the ListSerializer; the stubs omit it

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        from django.contrib.auth import get_user_model

        from .models import Team

        if _has_nul(attrs):
            raise serializers.ValidationError("text may not contain NUL characters")

        team = self.context.get("team")
        errors: dict[str, Any] = {}
        partners = {slug for rule in (attrs.get("sharing") or {}).values() for slug in rule.get("partners", [])}
        if partners:
            known = set(Team.objects.filter(slug__in=partners).values_list("slug", flat=True))
            if unknown := sorted(partners - known):
                errors["sharing"] = f"unknown partner team(s): {', '.join(unknown)}"
            elif team is not None and team.slug in partners:
                errors["sharing"] = "a team cannot be its own partner"
        if destinations := _destination_errors(attrs.get("sharing") or {}, team):
            errors["sharing"] = "; ".join(filter(None, [errors.get("sharing"), destinations]))
        users = {u for rule in attrs.get("notifications", []) for u in rule.get("users", [])}
        if users and team is not None:
            members = set(get_user_model().objects.filter(pk__in=users, groups=team.group).values_list("pk", flat=True))
            if strangers := sorted(users - members):
                errors["notifications"] = f"user(s) {', '.join(map(str, strangers))} are not members of the team"
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def to_document(self) -> PolicyDocument:
        """The validated data as a :class:`PolicyDocument` (call after ``is_valid``)."""
        return PolicyDocument.from_json(_jsonable(self.validated_data))


def _destination_errors(sharing: Mapping[str, Any], team: Any) -> str:
    """Why the destinations the sharing rules name are wrong ("" if they are fine).

    Requests are not pushed anywhere; a named destination must be one of the team's own
    (the ``sharing`` app's rows, looked up through the app registry so that policies do not
    depend on it; without that app, no destination can be named).
    """
    from django.apps import apps

    if (sharing.get(DataKind.REQUESTS.value) or {}).get("destinations"):
        return "requests are not pushed to destinations; name them for photometry or spectra"
    named = {name for rule in sharing.values() for name in (rule or {}).get("destinations", [])}
    if not named or team is None:
        return ""
    if not apps.is_installed("sharing"):
        return "no sharing destinations can be named: the sharing app is not installed"
    known = set(apps.get_model("sharing", "Destination").objects.filter(team_id=team.group_id, name__in=named)
                .values_list("name", flat=True))
    if unknown := sorted(named - known):
        return f"unknown destination(s) {', '.join(unknown)}; add them on the team's sharing page first"
    return ""


def _has_nul(value: Any) -> bool:
    """Whether any text in a (nested) value holds a NUL character, which PostgreSQL cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _jsonable(value: Any) -> Any:
    """Validated data with times as "HH:MM" strings, ready for a JSONField."""
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value


def document_validate(*, data: Any, team: Any = None) -> PolicyDocument:
    """Validate a JSON policy document; raises ``rest_framework.exceptions.ValidationError``."""
    serializer = PolicyDocumentSerializer(data=data, context={"team": team})
    serializer.is_valid(raise_exception=True)
    return serializer.to_document()
