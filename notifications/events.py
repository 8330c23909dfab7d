"""The events Baton notifies about: their names, what they mean, and how a message about one reads.

The catalogue is the union of the events team policies may name in a rule
(``policies.documents.EVENTS``, when the policies app is installed) and the few
the network announces to every team concerned (facility status). A producer
naming an event outside it is refused (:class:`~notifications.services.NotificationInvalid`),
so a typo cannot silently notify nobody.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from django.apps import apps

# Events of this app's own (policies does not list them; rules for them fall back to the default).
NETWORK_EVENTS: dict[str, str] = {
    "facility.down": "a facility the team has live requests at went down",
    "facility.up": "a facility the team has live requests at came back",
}

# How a message about each event is titled: str.format fields from the payload; a missing field reads "?".
TITLES: dict[str, str] = {
    "candidate.new": "New candidate {target_name} ({broker} {band} {magnitude}) matched {match_name}",
    "trigger.fired": "Trigger fired on {target_name}",
    "request.submitted": "Request {request_id} on {target_name} submitted",
    "request.dispatched": "Request {request_id} on {target_name} dispatched to {facility}",
    "request.completed": "Request {request_id} on {target_name} observed at {facility}",
    "request.failed": "Request {request_id} on {target_name} failed: {reason}",
    "request.replanned": "Request {request_id} on {target_name}: copy at {facility} failed, re-planning",
    "request.expired": "Request {request_id} on {target_name} expired ({visits_completed} visits observed)",
    "data.new": "New data on {target_name}",
    "data.released": "Data of {team_name} left its proprietary period",
    "claim.proposed": "Claim proposed: {title}",
    "claim.consent_needed": "Your agreement is needed for claim: {title}",
    "claim.overlap": "Claims overlap: {title}",
    "claim.state_changed": "Claim {title} is now {state}",
    "allocation.overrun": "Allocation overrun on {facility_class}",
    "policy.changed": "Policy of {team_name} changed (version {version})",
    "breach.recorded": "Breach recorded: {reason}",
    "facility.down": "Facility {facility} is down: {reason}",
    "facility.up": "Facility {facility} is back ({new_state})",
}

_NAME = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


def catalogue() -> dict[str, str]:
    """Every event name producers may announce, with what it means (read when needed, not at import)."""
    events: dict[str, str] = {}
    if apps.is_installed("policies"):
        from policies.documents import EVENTS

        events.update(EVENTS)
    events.update(NETWORK_EVENTS)
    return events


def event_known(name: str) -> bool:
    return bool(_NAME.match(name or "")) and name in catalogue()


def policy_knows(name: str) -> bool:
    """Whether team policies may name this event in a rule (and its door vets payloads of it)."""
    if not apps.is_installed("policies"):
        return False
    from policies.documents import EVENTS

    return name in EVENTS


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def title_for(event: str, payload: Mapping[str, Any]) -> str:
    """A one-line title for a notification about ``event`` (at most 150 characters, Slack's header limit)."""
    template = TITLES.get(event)
    if template is None:
        text = f"{event.replace('.', ' ').replace('_', ' ').capitalize()}"
    else:
        fields = _Lenient({k: v for k, v in payload.items() if isinstance(v, str | int | float) and not isinstance(v, bool)})
        text = string.Formatter().vformat(template, (), fields)
    return text if len(text) <= 150 else text[:149] + "…"
