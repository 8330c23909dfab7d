"""Announcing events: each one becomes outbox rows, one per recipient x channel, per the rules.

For every event the team rules choose recipients (:mod:`notifications.rules`),
the policy door vets each, the person's preferences narrow the channels, and
then each row is given its way out:

* inbox: delivered by being stored;
* quiet hours (the rule's, or the person's own in their time zone): held until
  they end (or folded into an after-quiet digest, or dropped, as the rule says);
  urgent events pass unless the rule says otherwise;
* a digest (hourly or daily, the rule's or the person's, the less frequent wins);
* the rate limit: past ``RATE_LIMIT_MESSAGES`` messages in ``RATE_LIMIT_WINDOW_S``
  to one address on one channel, the rest of the burst (and what of it has not
  been sent yet) folds into one burst digest, sent ``BURST_DIGEST_DELAY_S`` later;
* otherwise pending: a delivery task is enqueued when the transaction commits.

A de-duplication key (the producer's, or one derived from the event and its
payload, per UTC day) makes a repeated announcement change nothing. A person's
preferences (channels, muted events, quiet hours, digests) apply to their own
addresses; a shared one (a team's Slack channel) hears of an event once, under
the rule's timing only.

The rate limit is read per batch without a lock across transactions: two
producers racing on one address may each let a message or two more through;
the open digest itself is unique (a partial unique constraint).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .. import conf
from ..channels import AddressUnavailable, NotificationChannel, channel_get
from ..events import event_known
from ..models import Digest, DigestKind, Notification, Preference, Status
from ..rules import Door, Recipient, Rule, RuleBook
from ..selectors import preferences_for, quiet_until, timezone_of

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
_DIGEST_ORDER: dict[str, int] = {Digest.IMMEDIATE.value: 0, Digest.HOURLY.value: 1, Digest.DAILY.value: 2}
# Rows that are, or will become, one message each: what the rate limit counts.
_COUNTED = (Status.PENDING, Status.SENDING, Status.RETRYING, Status.SENT, Status.OPEN)


class NotificationInvalid(ValueError):
    """Bad input to a notifications service; nothing was changed."""


@dataclass(frozen=True)
class EventSpec:
    """One announcement: ``event`` to ``teams`` (per their rules) and to ``users`` (personally)."""

    event: str
    payload: Mapping[str, Any]
    teams: tuple[Group, ...] = ()
    users: tuple[Any, ...] = ()
    urgent: bool = False
    dedupe_key: str | None = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise NotificationInvalid(f"payload: {type(value).__name__} is not JSON-able")


def _group_of(team: Any) -> Group:
    group = getattr(team, "group", team)  # a policies Team stands for its group
    if not isinstance(group, Group) or group.pk is None:
        raise NotificationInvalid(f"teams: {team!r} is not a saved auth.Group")
    return group


def _validated(spec: EventSpec) -> tuple[EventSpec, dict[str, Any]]:
    if not isinstance(spec.event, str) or not event_known(spec.event):
        raise NotificationInvalid(f"event: unknown event {spec.event!r}")
    if not isinstance(spec.payload, Mapping):
        raise NotificationInvalid("payload: must be a mapping")
    body = _jsonable(spec.payload)
    if len(json.dumps(body)) > MAX_PAYLOAD_BYTES:
        raise NotificationInvalid(f"payload: larger than {MAX_PAYLOAD_BYTES} bytes")
    if spec.dedupe_key is not None and not (0 < len(spec.dedupe_key) <= 200):
        raise NotificationInvalid("dedupe_key: 1 to 200 characters")
    teams = tuple({g.pk: g for g in (_group_of(t) for t in spec.teams)}.values())
    for user in spec.users:
        if getattr(user, "pk", None) is None:
            raise NotificationInvalid(f"users: {user!r} is not a saved user")
    return EventSpec(event=spec.event, payload=body, teams=teams, users=tuple(spec.users), urgent=bool(spec.urgent),
                     dedupe_key=spec.dedupe_key), body


def dedupe_key_derived(*, event: str, payload: Mapping[str, Any], now: datetime) -> str:
    """The default key: the same event with the same payload, once per UTC day."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]
    return f"{event}:{digest}:{now.astimezone(ZoneInfo('UTC')):%Y%m%d}"


def notify_event(*, event: str, teams: Iterable[Group], payload: Mapping[str, Any], urgent: bool = False,
                 dedupe_key: str | None = None, now: datetime | None = None, users: Iterable[Any] = ()) -> list[Notification]:
    """Announce ``event`` to ``teams`` (per their rules and their members' preferences) and to ``users``.

    Creates the outbox rows (one per recipient x channel; see the module docstring for
    how each is timed) and enqueues delivery when the transaction commits. ``urgent``
    events (also every event in ``URGENT_EVENTS``) pass quiet hours, digests and the rate
    limit. ``dedupe_key``: the same key never reaches one address twice on one channel
    (default: derived from the event and payload, per UTC day). Returns the rows created.
    Raises :class:`NotificationInvalid` (and writes nothing) on an unknown event, a
    payload that is not JSON-able or too large, or a team that is not a saved group.
    """
    spec = EventSpec(event=event, payload=payload, teams=tuple(teams), users=tuple(users), urgent=urgent,
                     dedupe_key=dedupe_key)
    return notify_events(events=[spec], now=now)


def notify_events(*, events: Iterable[EventSpec], now: datetime | None = None) -> list[Notification]:
    """:func:`notify_event` for a batch, in one transaction (a burst folds into digests as one)."""
    now = now or timezone.now()
    checked = [_validated(spec) for spec in events]
    with transaction.atomic():
        planner = _Planner(now=now)
        chosen = [(spec, body, planner.recipients(spec, body)) for spec, body in checked]
        planner.door.prefetch(users=[r.user for _, _, recipients in chosen for r in recipients],
                              target_ids=[body["target_id"] for _, body, _ in chosen if isinstance(body.get("target_id"), int)])
        planner.prefetch_existing([planner.key_of(spec, body) for spec, body, _ in chosen])
        for spec, body, recipients in chosen:
            planner.plan(spec, body, recipients)
        return planner.commit()


def open_digest_for(*, row: Notification, kind: str, due: datetime, now: datetime) -> Notification:
    """The open digest of ``kind`` for the row's channel and address (locked), opened if there is none."""
    lookup = Q(channel=row.channel, address=row.address, digest_kind=kind, status=Status.OPEN)
    found = Notification.objects.select_for_update().filter(lookup).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return Notification.objects.create(
                recipient_id=row.recipient_id, channel=row.channel, address=row.address, personal=row.personal,
                event="digest", payload={"kind": kind}, status=Status.OPEN, digest_kind=kind, not_before=due,
                created_at=now, rule="digest",
            )
    except IntegrityError:
        # Another transaction opened it a moment ago: join it.
        return Notification.objects.select_for_update().get(lookup)


# --- the planner ------------------------------------------------------------------------------


@dataclass
class _Draft:
    row: Notification
    rate_key: tuple[str, str] | None = None  # set on pending rows the rate limit may still fold


@dataclass
class _AddressState:
    """What the rate limit knows about one (channel, address) during a batch."""

    counted: int
    burst: Notification | None
    pending: list[_Draft] = field(default_factory=list)


class _Planner:
    def __init__(self, *, now: datetime) -> None:
        self.now = now
        self.rules = RuleBook()
        self.door = Door(now=now)
        self.drafts: list[_Draft] = []
        self.seen: set[tuple[str, str, str]] = set()  # (channel, address, dedupe key) in the outbox or planned
        self.preferences: dict[int, Preference] = {}
        self.addresses: dict[tuple[str, int, int | None], Any] = {}
        self.states: dict[tuple[str, str], _AddressState] = {}
        self.digests: dict[tuple[str, str, str], Notification] = {}
        self.urgent_events = set(conf.setting("URGENT_EVENTS"))
        self.channels = conf.channel_paths()

    # -- choosing ----------------------------------------------------------------------------

    def recipients(self, spec: EventSpec, body: dict[str, Any]) -> list[Recipient]:
        """Who the teams' rules (and the personal list) choose for this event."""
        recipients: list[Recipient] = []
        for team in spec.teams:
            recipients += self.rules.recipients(event=spec.event, team=team, payload=body)
        personal = Rule(channels=tuple(conf.setting("DEFAULT_CHANNELS")), source="personal")
        return recipients + [Recipient(user=u, rule=personal, team=None) for u in spec.users]

    def key_of(self, spec: EventSpec, body: dict[str, Any]) -> str:
        return spec.dedupe_key or dedupe_key_derived(event=spec.event, payload=body, now=self.now)

    def prefetch_existing(self, keys: list[str]) -> None:
        """The (channel, address, key) triples already in the outbox for this batch's keys (one query per 5,000)."""
        unique = sorted(set(keys))
        for start in range(0, len(unique), 5000):
            self.seen.update(Notification.objects.filter(dedupe_key__in=unique[start:start + 5000])
                             .values_list("channel", "address", "dedupe_key"))

    def plan(self, spec: EventSpec, body: dict[str, Any], recipients: list[Recipient]) -> None:
        urgent = spec.urgent or spec.event in self.urgent_events
        key = self.key_of(spec, body)
        self._load_preferences([r.user.pk for r in recipients])
        for recipient in recipients:
            allowed, reason = self.door.allowed(recipient=recipient.user, event=spec.event, payload=body)
            for name in recipient.rule.channels:
                if name not in self.channels:
                    logger.warning("rule %s names channel %r, which is not configured", recipient.rule.source, name)
                    continue
                self._plan_one(spec=spec, body=body, urgent=urgent, key=key, recipient=recipient, channel=channel_get(name),
                               allowed=allowed, reason=reason)

    def _load_preferences(self, user_ids: list[int]) -> None:
        missing = sorted(set(user_ids) - set(self.preferences))
        if missing:
            self.preferences.update(preferences_for(user_ids=missing))

    def _address(self, channel: NotificationChannel, recipient: Recipient) -> Any:
        cache_key = (channel.name or type(channel).__name__, recipient.user.pk, recipient.team.pk if recipient.team else None)
        if cache_key not in self.addresses:
            try:
                self.addresses[cache_key] = channel.address_for(user=recipient.user, team=recipient.team,
                                                                preference=self.preferences[recipient.user.pk])
            except AddressUnavailable as exc:
                self.addresses[cache_key] = exc
        return self.addresses[cache_key]

    def _plan_one(self, *, spec: EventSpec, body: dict[str, Any], urgent: bool, key: str, recipient: Recipient,
                  channel: NotificationChannel, allowed: bool, reason: str) -> None:
        user, rule = recipient.user, recipient.rule
        preference = self.preferences[user.pk]
        name = channel.name
        address = self._address(channel, recipient)
        row = Notification(recipient=user, team=recipient.team, event=spec.event, channel=name, payload=body, urgent=urgent,
                           dedupe_key=key, rule=rule.source[:200], policy_version_id=rule.policy_version_id,
                           created_at=self.now)
        if isinstance(address, AddressUnavailable):
            row.address, row.status, row.last_error = f"user:{user.pk}", Status.FAILED, str(address)
        else:
            row.address, row.personal = address.value, address.personal
        if (name, row.address, key) in self.seen:
            return  # this event already reaches (or reached) that address on this channel
        if row.personal and not self._preference_allows(preference, name, spec.event):
            return
        self.seen.add((name, row.address, key))
        if not allowed:
            row.status, row.last_error = Status.SUPPRESSED, reason[:2000]
            self.drafts.append(_Draft(row))
            return
        if row.status == Status.FAILED:
            row.last_attempt_at = self.now
            self.drafts.append(_Draft(row))
            return
        if channel.silent:
            row.status, row.sent_at = Status.SENT, self.now
            self.drafts.append(_Draft(row))
            return
        self._time(row, rule=rule, preference=preference, urgent=urgent)

    @staticmethod
    def _preference_allows(preference: Preference, channel: str, event: str) -> bool:
        if event in (preference.muted_events or []) and channel != "inbox":
            return False  # a muted event still lands in the inbox: muting silences, it does not hide
        if channel == "email" and not preference.email_enabled:
            return False
        return not (channel == "slack" and not preference.slack_enabled)

    # -- timing ------------------------------------------------------------------------------

    def _time(self, row: Notification, *, rule: Rule, preference: Preference, urgent: bool) -> None:
        now = self.now
        rule_quiet = rule.quiet is not None and rule.quiet.contains(now) and not (urgent and rule.urgent_bypasses_quiet)
        own_quiet = quiet_until(preference=preference, now=now) if row.personal and not urgent else None
        if rule_quiet and rule.quiet is not None:
            ends = max(filter(None, [rule.quiet.ends_after(now), own_quiet]))
            if rule.quiet_action == "drop":
                row.status, row.last_error = Status.SUPPRESSED, f"quiet hours of {rule.source}: dropped"
                self.drafts.append(_Draft(row))
            elif rule.quiet_action == "digest":
                self._fold(row, kind=DigestKind.QUIET, due=ends)
            else:
                self._hold(row, until=ends)
            return
        if own_quiet is not None:
            self._hold(row, until=own_quiet)
            return
        if urgent:
            self._pending(row, counted=True)
            return
        digest = rule.digest
        if row.personal and _DIGEST_ORDER.get(preference.digest, 0) > _DIGEST_ORDER.get(digest, 0):
            digest = preference.digest
        if digest == Digest.HOURLY:
            self._fold(row, kind=DigestKind.HOURLY, due=now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
            return
        if digest == Digest.DAILY:
            self._fold(row, kind=DigestKind.DAILY, due=self._daily_due(preference))
            return
        state = self._state(row.channel, row.address)
        if state.burst is not None or state.counted >= int(conf.setting("RATE_LIMIT_MESSAGES")):
            self._burst(row, state)
            return
        self._pending(row, counted=True)

    def _daily_due(self, preference: Preference) -> datetime:
        zone = ZoneInfo(timezone_of(preference))
        hour = preference.digest_hour if preference.digest_hour is not None else int(conf.setting("DAILY_DIGEST_HOUR"))
        local = self.now.astimezone(zone)
        due = local.replace(hour=hour, minute=0, second=0, microsecond=0)
        return due if due > local else (due + timedelta(days=1)).replace(hour=hour)

    def _hold(self, row: Notification, *, until: datetime) -> None:
        row.status, row.not_before = Status.HELD, until
        self.drafts.append(_Draft(row))

    def _pending(self, row: Notification, *, counted: bool) -> None:
        row.status, row.next_attempt_at = Status.PENDING, self.now
        draft = _Draft(row, rate_key=None if row.urgent else (row.channel, row.address))
        self.drafts.append(draft)
        if counted:
            state = self._state(row.channel, row.address)
            state.counted += 1
            if draft.rate_key is not None:
                state.pending.append(draft)

    def _state(self, channel: str, address: str) -> _AddressState:
        key = (channel, address)
        if key not in self.states:
            since = self.now - timedelta(seconds=int(conf.setting("RATE_LIMIT_WINDOW_S")))
            counted = Notification.objects.filter(channel=channel, address=address, created_at__gte=since,
                                                  status__in=_COUNTED).count()
            burst = (Notification.objects.select_for_update().filter(channel=channel, address=address,
                                                                      digest_kind=DigestKind.BURST, status=Status.OPEN).first())
            self.states[key] = _AddressState(counted=counted, burst=burst)
        return self.states[key]

    def _burst(self, row: Notification, state: _AddressState) -> None:
        if state.burst is None:
            due = self.now + timedelta(seconds=int(conf.setting("BURST_DIGEST_DELAY_S")))
            state.burst = self._open_digest(row, kind=DigestKind.BURST, due=due)
            state.counted += 1
            # What of the burst has not gone out yet goes with the rest: from earlier transactions...
            Notification.objects.filter(channel=row.channel, address=row.address, status=Status.PENDING, attempts=0,
                                        urgent=False, digest_kind="").update(status=Status.DIGESTED, digest=state.burst,
                                                                             next_attempt_at=None)
            # ...and from this one.
            for draft in state.pending:
                draft.row.status, draft.row.digest, draft.row.next_attempt_at = Status.DIGESTED, state.burst, None
            state.pending.clear()
        row.status, row.digest = Status.DIGESTED, state.burst
        self.drafts.append(_Draft(row))

    def _fold(self, row: Notification, *, kind: str, due: datetime) -> None:
        key = (row.channel, row.address, kind)
        digest = self.digests.get(key)
        if digest is None:
            digest = self.digests[key] = self._open_digest(row, kind=kind, due=due)
        row.status, row.digest = Status.DIGESTED, digest
        self.drafts.append(_Draft(row))

    def _open_digest(self, row: Notification, *, kind: str, due: datetime) -> Notification:
        return open_digest_for(row=row, kind=kind, due=due, now=self.now)

    # -- writing -----------------------------------------------------------------------------

    def commit(self) -> list[Notification]:
        rows = [d.row for d in self.drafts]
        if not rows:
            return []
        try:
            with transaction.atomic():
                created = Notification.objects.bulk_create(rows)
        except IntegrityError:
            # A concurrent announcement of the same event got some of these first: keep the rest.
            created = []
            for row in rows:
                try:
                    with transaction.atomic():
                        row.pk = None
                        row.save(force_insert=True)
                        created.append(row)
                except IntegrityError:
                    continue
        from ..tasks import notification_deliver_task

        for row in created:
            if row.status == Status.PENDING:
                notification_deliver_task.delay_on_commit(row.pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
        return created
