"""Demo data for the project itself: the demo login and a few well-known targets.

Every Baton app may have a ``demo.py`` with ``load(*, stdout)``; the
``baton_demo`` command runs them all (the project's first). Loaders are
idempotent: running the command twice changes nothing the second time.
"""

from __future__ import annotations

from typing import TextIO

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "baton-demo"  # noqa: S105 - a published demo login, created only by the demo command

# Real events with their published coordinates (deg, ICRS).
DEMO_TARGETS = [
    # OGLE-2016-BLG-1195: KMTNet/OGLE microlensing event, Galactic bulge.
    {"name": "OGLE-2016-BLG-1195", "ra": 268.5317917, "dec": -30.4728056},
    # SN 2023ixf in M101.
    {"name": "SN 2023ixf", "ra": 210.9106750, "dec": 54.3116944},
    # AT 2017gfo, the kilonova of GW170817, in NGC 4993.
    {"name": "AT 2017gfo", "ra": 197.4503750, "dec": -23.3814722},
    # SN 2011fe in M101.
    {"name": "SN 2011fe", "ra": 210.7739583, "dec": 54.2736944},
]


def load(*, stdout: TextIO) -> None:
    """Create the demo superuser and the demo targets (idempotent)."""
    # Imported here so the devstack can read the demo login without setting Django up.
    from django.contrib.auth import get_user_model
    from tom_targets.models import Target

    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=DEMO_USERNAME,
        defaults={"email": "demo@localhost", "is_staff": True, "is_superuser": True, "first_name": "Demo"},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    stdout.write(f"  demo login: {DEMO_USERNAME} / {DEMO_PASSWORD}{' (created)' if created else ''}\n")
    for spec in DEMO_TARGETS:
        Target.objects.get_or_create(
            name=spec["name"], defaults={"type": Target.SIDEREAL, "ra": spec["ra"], "dec": spec["dec"], "epoch": 2000.0}
        )
    stdout.write(f"  {len(DEMO_TARGETS)} demo targets\n")
