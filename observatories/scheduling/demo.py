"""Demo requests: two follow-up goals that the running demo plans and dispatches to the simulator."""

from __future__ import annotations

from datetime import timedelta
from typing import TextIO


def load(*, stdout: TextIO) -> None:
    """Submit two requests for the demo team on targets up tonight (idempotent: once per database)."""
    from astropy.coordinates import get_sun
    from astropy.time import Time
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from tom_targets.models import Target

    from .models import ObservingRequest
    from .services import RequestInvalid, request_submit

    if ObservingRequest.objects.filter(source="demo").exists():
        stdout.write("  demo requests already there\n")
        return
    from policies.services import team_create

    user = get_user_model().objects.filter(username="demo").first()
    if user is None:
        stdout.write("  no demo user; no demo requests\n")
        return
    # A Baton team of the demo user's (the policies demo made them); its policy allows it telescope time.
    team = Group.objects.filter(user=user, baton_team__isnull=False).order_by("name").first() or team_create(
        name="Demo follow-up team", admins=[user]
    ).group
    now = timezone.now()
    anti_sun = (get_sun(Time(now)).ra.deg + 180.0) % 360.0
    made = 0
    for name, ra, dec, hours, probability in (
        ("Demo transient (opposition)", anti_sun, -30.0, 36, 0.95),
        ("Demo nova (east)", (anti_sun + 45.0) % 360.0, -20.0, 48, 0.9),
    ):
        target, _ = Target.objects.get_or_create(name=name, defaults={"type": Target.SIDEREAL, "ra": ra, "dec": dec})
        try:
            request_submit(
                target=target, team=team, requester=user, telescope_class="1m0",
                exposures=[{"filter": "rp", "exposure_s": 120, "count": 2}], window_start=now,
                window_end=now + timedelta(hours=hours), success_probability=probability, source="demo",
            )
            made += 1
        except RequestInvalid as exc:
            stdout.write(f"  demo request for {name} not made: {exc}\n")
    stdout.write(f"  {made} demo observing requests (planned by the worker, dispatched to the simulated network)\n")
