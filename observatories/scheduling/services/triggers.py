"""From a fired trigger rule to an observing request: the candidates app's request factory.

``BATON_TRIGGER_REQUEST_FACTORY = "observatories.scheduling.services.triggers.request_from_firing"``
(the default). The firing's ``request_params`` are the team's request defaults
overridden by the rule's; these keys are understood (anything else is ignored):

- ``telescope_class`` ("1m0"), ``exposures`` ([{"filter": "rp", "exposure_s": 120, "count": 1}]),
- ``window_hours`` (48): the window starts when the rule fires,
- ``success_probability`` (0.95), ``max_airmass`` (2.0), ``min_moon_separation_deg`` (30),
- ``priority``: a rule's own 0-100 priority; a microlensing trigger's score in [0, 1]
  is scaled to 1-10 (high expected magnification near peak ranks first),
- ``cadence_hours``: with it, the window is cut into visits that far apart
  (a microlensing event's cadence from its timescale), at most ``max_visits`` (48).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from ..models import ObservingRequest
from .planning import request_submit

DEFAULT_EXPOSURES = [{"filter": "rp", "exposure_s": 120.0, "count": 1}]


def request_from_firing(*, firing: Any) -> ObservingRequest:
    """Make the observing request a fired rule asks for (RequestInvalid propagates: the firing fails)."""
    params: dict[str, Any] = dict(firing.request_params or {})
    now = timezone.now()
    window = timedelta(hours=float(params.get("window_hours", 48)))
    priority = params.get("priority", firing.priority)
    if priority is None:
        priority = 5.0
    elif firing.rule.kind == "microlensing" or float(priority) <= 1.0:
        priority = 1.0 + 9.0 * float(priority)
    cadence_hours = params.get("cadence_hours")
    cadence = timedelta(hours=float(cadence_hours)) if cadence_hours else None
    visits = 1
    if cadence is not None and cadence < window:
        visits = max(1, min(int(params.get("max_visits", 48)), int(window / cadence)))
    return request_submit(
        target=firing.target, team=firing.rule.team, requester=firing.requested_by,
        telescope_class=str(params.get("telescope_class", "1m0")),
        exposures=list(params.get("exposures", DEFAULT_EXPOSURES)), window_start=now, window_end=now + window,
        cadence_period=cadence if visits > 1 else None, cadence_visits=visits,
        max_airmass=float(params.get("max_airmass", 2.0)),
        min_moon_separation_deg=float(params.get("min_moon_separation_deg", 30.0)),
        priority=float(priority), success_probability=float(params.get("success_probability", 0.95)),
        source=f"trigger:{firing.rule_id}"[:32],
    )
