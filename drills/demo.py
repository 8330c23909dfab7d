"""Demo drill: a fast transient rehearsed by the demo user's first team, paced so the page shows it moving."""

from __future__ import annotations

from typing import TextIO


def load(*, stdout: TextIO) -> None:
    """Start one drill (idempotent: once per database) with a filter and trigger rule to exercise."""
    from astropy.coordinates import get_sun
    from astropy.time import Time
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from candidates.models import StreamFilter, TriggerRule
    from candidates.services import filter_create

    from .models import Drill
    from .services import DrillRefused, drill_create

    if Drill.objects.exists():
        stdout.write("  a drill is already there\n")
        return
    user = get_user_model().objects.filter(username="demo").first()
    team = Group.objects.filter(user=user, baton_team__isnull=False).order_by("name").first() if user else None
    if team is None:
        stdout.write("  no demo team; no demo drill\n")
        return
    if not StreamFilter.objects.filter(team=team).exists():
        bright = filter_create(name="Bright risers (demo)", team=team, created_by=user,
                               predicates=[{"field": "mag", "op": "<=", "value": 19.0}])
        TriggerRule.objects.get_or_create(team=team, name="Follow bright risers (demo)", filter=bright,
                                          defaults={"request_defaults": {"window_hours": 24}})
    now = timezone.now().replace(microsecond=0)
    anti_sun = (get_sun(Time(now)).ra.deg + 180.0) % 360.0
    scenario = {
        "duration_hours": 24, "step_minutes": 15,
        "events": [{"kind": "fast_transient", "name": "Demo-FT", "ra": round(anti_sun, 4), "dec": -25.0,
                    "start_hours": 0.5, "peak_mag": 17.0}],
        "faults": [{"kind": "clouds", "site": "cpt", "at_hours": 0, "hours": 12},
                   {"kind": "slack_down", "at_hours": 0, "hours": 2}],
    }
    try:
        drill = drill_create(team=team, user=user, name="Demo rehearsal", scenario=scenario, seed=1, speed=600.0)
    except DrillRefused as exc:
        stdout.write(f"  no demo drill: {exc}\n")
        return
    stdout.write(f"  drill {drill.pk} for {team.name}: 24 simulated hours at 600x (about 3 minutes)\n")
