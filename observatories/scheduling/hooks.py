"""Where the scheduler meets team policies and notifications.

The planner asks for a team's fair-share factor and checks its allocation;
finished dispatches are booked on the team's usage ledger; lifecycle events
are announced. Each hook names one dotted path in the ``BATON_SCHEDULING_HOOKS``
setting; an empty path gives the neutral behaviour documented on each
function, so the scheduler works before (and without) those apps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def _hook(name: str) -> Any | None:
    path = getattr(settings, "BATON_SCHEDULING_HOOKS", {}).get(name, "")
    return import_string(path) if path else None


def team_factor(*, team: Any) -> float:
    """The team's fair-share priority factor (neutral: 1.0)."""
    hook = _hook("team_factor")
    return float(hook(team=team)) if hook else 1.0


@dataclass(frozen=True)
class Allocation:
    allowed: bool
    action: str  # "allow", "refuse" or "queue"
    reason: str = ""


def allocation_check(*, team: Any, telescope_class: str, hours: float) -> Allocation:
    """Whether the team may book ``hours`` more on ``telescope_class`` (neutral: allowed)."""
    hook = _hook("allocation_check")
    if not hook:
        return Allocation(allowed=True, action="allow")
    decision = hook(team=team, facility_class=telescope_class, hours=hours)
    return Allocation(allowed=bool(decision.allowed), action=str(decision.action), reason=str(decision.reason))


def proposal_for(*, team: Any, facility: Any, at: Any = None) -> str:
    """The proposal ``team`` observes under at ``facility`` (its allocation's proposal there, else the facility's
    default proposal); "" when it has none, and then the facility is not a chance for that team."""
    hook = _hook("proposal_for")
    if hook:
        proposal = hook(team=team, facility=facility, at=at)
        if proposal:
            return str(proposal)
    return str(facility.default_proposal or "")


def usage_record(*, team: Any, facility_code: str, telescope_class: str, hours: float, kind: str, source_key: str) -> None:
    """Book telescope time on the team's ledger (idempotent by source_key; neutral: log only)."""
    hook = _hook("usage_record")
    if hook:
        hook(team=team, facility_code=facility_code, facility_class=telescope_class, hours=hours, kind=kind,
             source_key=source_key)
    else:
        logger.info("usage: team=%s facility=%s hours=%.3f kind=%s", team, facility_code, hours, kind)


def data_record(*, data: list[Any], team: Any, kind: str) -> None:
    """Record that ``team`` owns the stored ``data`` (policies share and release it; neutral: log only)."""
    hook = _hook("data_record")
    if hook:
        hook(data=data, team=team, kind=kind)
    else:
        logger.info("data: %d %s of team %s stored", len(data), kind, team)


def interest_record(*, target: Any, team: Any, source: str) -> None:
    """Record that ``team`` follows ``target`` now that it asks to observe it (policies show the target to
    partners and audiences as the team's ``requests`` rule says; neutral: nothing)."""
    hook = _hook("interest_record")
    if hook:
        hook(target=target, team=team, source=source[:40])


def requests_visible_q(*, user: Any) -> Q | None:
    """The filter of the requests ``user`` may see (policies' door: their teams', plus what other teams share;
    neutral: None, meaning their teams' requests only)."""
    hook = _hook("requests_visible")
    return hook(user=user) if hook else None


def request_act_allowed(*, user: Any, team: Any) -> bool:
    """Whether ``user`` may submit or cancel requests for ``team`` (policies: its admins and members, not observers;
    neutral: any member of the team's group)."""
    hook = _hook("request_act")
    if hook:
        return bool(hook(user=user, team_group_id=team.pk))
    return bool(user.is_authenticated and user.groups.filter(pk=team.pk).exists())


def notify(*, event: str, request: Any, **payload: Any) -> None:
    """Announce a lifecycle event (request.dispatched, .completed, .failed, .replanned, .expired)."""
    hook = _hook("notify")
    if hook:
        hook(event=event, request=request, **payload)
    else:
        logger.info("event %s for request %s: %s", event, getattr(request, "pk", request), payload)
