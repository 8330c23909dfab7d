"""Notification rules as data, and the door's check that a notification reveals nothing proprietary.

The notifications app (to come) delivers what :func:`policies.hooks.notify`
decides. It reads the rules with :func:`notification_rules_for` and must ask
:func:`notification_allowed` before sending anything to anyone.

Payload contract: anything proprietary in a payload comes with the reference
that covers it, and the check refuses a recipient who may not see it:

* ``target_id``: a target (checked with :func:`policies.access.target_access`);
* ``data``: ``[{"model": "tom_dataproducts.photometryreduceddatum", "id": 17}, ...]``;
* ``claim_id``: a claim;
* ``request``: ``{"team_id": 3, "created_at": "2026-03-01T12:00:00+00:00"}`` (a scheduler request);
* ``owned``: ``{"team_id": 3, "kind": "photometry", "acquired_at": "..."}`` (anything else a team owns).

A reference that cannot be resolved (a deleted target) refuses: fail closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.dateparse import parse_datetime
from tom_targets.models import Target

from . import access, clock
from .documents import EVENTS, NotificationRule
from .models import Claim, DataKind, Role, Team, TeamRole
from .selectors import policies_in_force, team_group_ids_of

Decision = access.Decision


def default_rule(event: str) -> NotificationRule:
    """The rule used when a team has none for an event: its admins, in the inbox."""
    return NotificationRule(event=event, roles=(Role.ADMIN.value,), channels=("inbox",))


def notification_rules_for(*, team: Team | Group, event: str) -> list[tuple[int | None, NotificationRule]]:
    """The team's (a Team, or its auth.Group) rules for ``event`` as (index in the policy, rule).

    A team without a rule for the event gets the default rule (index None): its admins, in the inbox.
    """
    document = policies_in_force()[team.group_id if isinstance(team, Team) else team.pk].document
    rules: list[tuple[int | None, NotificationRule]] = [(i, r) for i, r in enumerate(document.notifications) if r.event == event]
    return rules or [(None, default_rule(event))]


def rule_recipients(*, team: Team, rule: NotificationRule) -> list[Any]:
    """Active members of the team with one of the rule's roles, and the rule's named members."""
    members = get_user_model().objects.filter(groups=team.group, is_active=True)
    roles = dict(TeamRole.objects.filter(team=team).values_list("user_id", "role"))
    chosen = [u for u in members if roles.get(u.pk, Role.MEMBER.value) in rule.roles or u.pk in rule.users]
    return sorted(chosen, key=lambda u: u.pk)


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_datetime(value) if isinstance(value, str) else None


def notification_allowed(*, recipient: Any, event: str, payload: Mapping[str, Any], now: datetime | None = None) -> Decision:
    """Whether ``recipient`` may receive this notification: every reference in it must be visible to them."""
    now = now or clock.now()
    if not recipient.is_active:
        return Decision(False, "the recipient is inactive")
    if event not in EVENTS:
        return Decision(False, f"unknown event {event!r}")
    if "target_id" in payload:
        target = Target.objects.filter(pk=payload["target_id"]).first()
        if target is None:
            return Decision(False, "the target no longer exists")
        decision = access.target_access(user=recipient, target=target, now=now)
        if not decision:
            return decision
    for ref in payload.get("data", ()):
        try:
            model = apps.get_model(ref["model"])
        except (LookupError, ValueError, KeyError, TypeError):
            return Decision(False, f"unknown data reference {ref!r}")
        datum = model._default_manager.filter(pk=ref.get("id")).first()
        if datum is None:
            return Decision(False, "a referenced datum no longer exists")
        decision = access.datum_access(user=recipient, datum=datum, now=now)
        if not decision:
            return decision
    if "claim_id" in payload:
        claim = Claim.objects.filter(pk=payload["claim_id"]).first()
        if claim is None or not access.claim_visible_to(user=recipient, claim=claim, now=now):
            return Decision(False, "the claim is not visible to the recipient")
    if "request" in payload:
        ref = payload["request"]
        created_at = _when(ref.get("created_at")) if isinstance(ref, Mapping) else None
        if created_at is None:
            return Decision(False, "a request reference needs team_id and created_at")
        decision = access.request_access(user=recipient, team_id=int(ref.get("team_id") or 0), created_at=created_at, now=now)
        if not decision:
            return decision
    if "owned" in payload:
        ref = payload["owned"]
        owner = policies_in_force().get(int(ref.get("team_id") or 0)) if isinstance(ref, Mapping) else None
        taken_at = _when(ref.get("acquired_at")) if isinstance(ref, Mapping) else None
        if owner is None or taken_at is None or ref.get("kind") not in DataKind.values:
            return Decision(False, "an owned reference needs a team_id, a kind and acquired_at")
        decision = access.shared_decision(mine=team_group_ids_of(user=recipient), owner=owner, kind=ref["kind"],
                                          taken_at=taken_at, now=now)
        if not decision:
            return decision
    return Decision(True, "everything referenced is visible to the recipient")
