"""Who hears of an event, on which channels, and when: the team's rules, behind one narrow interface.

:class:`RuleBook` answers, for an event, a team and a payload, the recipients
with the rule that chose each (channels, quiet hours, digest, the rule's source
and policy version). It is the one place that reads rules:

* a group that is a policies ``Team`` gets its policy's notification rules,
  read with ``policies.notifications.notification_rules_for`` and
  ``rule_recipients`` (conditions such as priority or magnitude evaluated on the
  payload; the policy's default rule when it has none for the event);
* any other group (or every group, without the policies app) gets the default:
  its active members on ``BATON_NOTIFICATIONS['DEFAULT_CHANNELS']`` (email + inbox).

:func:`recipient_allowed` is the door every notification passes: for events a
policy may name it is ``policies.notifications.notification_allowed``
(proprietary data is never notified to other teams); events outside the
policies' list must carry no reference to anything a team owns.

Rules are read through :class:`RuleBook`, which caches what it read for the
length of one batch of events (one transaction). :class:`Door` asks the same
door for a batch: which of the batch's targets each recipient may see is read
once per person with ``policies.access.targets_visible_to`` (the policies' own
selector, the set form of the ``target_access`` the door asks per target);
anything else goes to :func:`recipient_allowed` one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.contrib.auth.models import Group

from . import conf
from .events import policy_knows

# Payload keys that refer to something a team owns (policies.notifications' payload contract).
REFERENCE_KEYS = frozenset({"target_id", "data", "claim_id", "request", "owned"})


@dataclass(frozen=True)
class QuietWindow:
    """A daily window of local wall time; ``start > end`` wraps past midnight; ``start == end`` is empty."""

    start: time
    end: time
    timezone: str

    def contains(self, at: datetime) -> bool:
        if self.start == self.end:
            return False
        local = at.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, at: datetime) -> datetime:
        """The first end of the window after ``at`` (aware; the end's wall time in the zone)."""
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        end = datetime.combine(local.date(), self.end, tzinfo=zone)
        while end <= local:
            end = datetime.combine(end.date() + timedelta(days=1), self.end, tzinfo=zone)
        return end


@dataclass(frozen=True)
class Rule:
    """How one rule delivers: channels, quiet hours (hold, digest or drop), digest, and where it came from."""

    channels: tuple[str, ...]
    quiet: QuietWindow | None = None
    quiet_action: str = "hold"
    digest: str = "immediate"
    urgent_bypasses_quiet: bool = True
    source: str = "default"
    policy_version_id: int | None = None


@dataclass(frozen=True)
class Recipient:
    user: Any
    rule: Rule
    team: Group | None


def default_rule() -> Rule:
    return Rule(channels=tuple(conf.setting("DEFAULT_CHANNELS")), source="notifications default")


@dataclass
class RuleBook:
    """Reads rules and recipients once per (team, event) for a batch of events."""

    _policy_rules: dict[tuple[int, str], list[tuple[Any, Rule, list[Any]]] | None] = field(default_factory=dict)
    _members: dict[int, list[Any]] = field(default_factory=dict)

    def recipients(self, *, event: str, team: Group, payload: Mapping[str, Any]) -> list[Recipient]:
        """The recipients of ``event`` in ``team`` whose rule's conditions hold for ``payload``."""
        rules = self._from_policies(event=event, team=team)
        if rules is None:
            rule = default_rule()
            return [Recipient(user=u, rule=rule, team=team) for u in self._group_members(team)]
        chosen: list[Recipient] = []
        for policy_rule, rule, users in rules:
            if policy_rule.matches(payload):
                chosen += [Recipient(user=u, rule=rule, team=team) for u in users]
        return chosen

    def _group_members(self, team: Group) -> list[Any]:
        if team.pk not in self._members:
            self._members[team.pk] = list(team.user_set.filter(is_active=True).order_by("pk"))
        return self._members[team.pk]

    def _from_policies(self, *, event: str, team: Group) -> list[tuple[Any, Rule, list[Any]]] | None:
        """The team policy's rules for the event, or None when the group is not a policies team.

        This is where the policies app plugs in: ``notification_rules_for(team=..., event=...)``
        and ``rule_recipients(team=..., rule=...)`` from ``policies.notifications``.
        """
        key = (team.pk, event)
        if key in self._policy_rules:
            return self._policy_rules[key]
        found: list[tuple[Any, Rule, list[Any]]] | None = None
        if apps.is_installed("policies"):
            from policies.notifications import notification_rules_for, rule_recipients
            from policies.selectors import policies_in_force, team_of

            policies_team = team_of(group=team)
            if policies_team is not None:
                policy = policies_in_force().get(team.pk)
                version_id = policy.version_id if policy else None
                number = policy.number if policy else 0
                found = []
                for index, policy_rule in notification_rules_for(team=policies_team, event=event):
                    quiet = policy_rule.quiet_hours
                    rule = Rule(
                        channels=tuple(policy_rule.channels),
                        quiet=QuietWindow(start=quiet.start, end=quiet.end, timezone=quiet.timezone) if quiet else None,
                        quiet_action=policy_rule.quiet_action,
                        digest=policy_rule.digest,
                        urgent_bypasses_quiet=policy_rule.urgent_bypasses_quiet,
                        source=(f"policy {policies_team.slug} v{number} rule {index}" if index is not None
                                else f"policy {policies_team.slug} v{number} default rule"),
                        policy_version_id=version_id,
                    )
                    found.append((policy_rule, rule, rule_recipients(team=policies_team, rule=policy_rule)))
        self._policy_rules[key] = found
        return found


def recipient_allowed(*, recipient: Any, event: str, payload: Mapping[str, Any], now: datetime) -> tuple[bool, str]:
    """Whether ``recipient`` may be told about ``event`` with this payload, and why (the policy door)."""
    if not recipient.is_active:
        return False, "the recipient is inactive"
    if not apps.is_installed("policies"):
        return True, "no policies installed"
    if policy_knows(event):
        from policies.notifications import notification_allowed

        decision = notification_allowed(recipient=recipient, event=event, payload=payload, now=now)
        return decision.allowed, decision.reason
    carried = sorted(REFERENCE_KEYS & set(payload))
    if carried:
        # Fail closed: the door only vets events a policy knows, so nothing owned may ride on others.
        return False, f"{event} is not a policy event, yet its payload refers to {', '.join(carried)}"
    return True, "a network event with nothing owned in it"


class Door:
    """:func:`recipient_allowed` for a batch of events, with target visibility read once per recipient."""

    def __init__(self, *, now: datetime) -> None:
        self.now = now
        self.visible: dict[int, frozenset[int]] = {}
        self.checked: frozenset[int] = frozenset()

    # Below this many targets, asking per (recipient, target) is cheaper than the set query per person.
    PREFETCH_MIN_TARGETS = 10

    def prefetch(self, *, users: Iterable[Any], target_ids: Iterable[int]) -> None:
        """Read which of ``target_ids`` each of ``users`` may see (one query per person)."""
        ids = frozenset(target_ids)
        if len(ids) < self.PREFETCH_MIN_TARGETS or not apps.is_installed("policies"):
            return
        from tom_targets.models import Target

        from policies.access import targets_visible_to

        self.checked = ids
        for user in {u.pk: u for u in users}.values():
            visible = targets_visible_to(user=user, now=self.now, queryset=Target.objects.filter(pk__in=sorted(ids)))
            self.visible[user.pk] = frozenset(visible.values_list("pk", flat=True))

    def allowed(self, *, recipient: Any, event: str, payload: Mapping[str, Any]) -> tuple[bool, str]:
        target_id = payload.get("target_id")
        prefetched = (REFERENCE_KEYS & set(payload) == {"target_id"} and recipient.is_active and policy_knows(event)
                      and recipient.pk in self.visible and target_id in self.checked)
        if not prefetched:
            return recipient_allowed(recipient=recipient, event=event, payload=payload, now=self.now)
        if target_id in self.visible[recipient.pk]:
            return True, "the target is visible to the recipient"
        return False, "the target is not visible to the recipient"
