"""Demo data of `policies`: two teams with policies; the demo user is the admin of one (idempotent).

Runs after tomsite's loader (app order), which creates the ``demo`` login and
the demo targets. KMTNet-like "Bulge Watch" shares photometry after 14 days,
spectra with its partner at once; "Nearby SNe" shares everything with the
network in real time. Bulge Watch follows OGLE-2016-BLG-1195 and claims it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TextIO

DEMO_PASSWORD = "baton-demo"  # noqa: S105 - the published demo password, as tomsite.demo's


def _document(*, partners: list[str], photometry_days: float, release_to: str, guidelines: str, semester: str,
              hours: float) -> dict:
    return {
        "schema": 1,
        "sharing": {
            "photometry": {"partners": [], "proprietary_days": photometry_days, "release_to": release_to},
            "spectra": {"partners": partners, "proprietary_days": photometry_days, "release_to": release_to},
            "requests": {"partners": partners, "proprietary_days": 0, "release_to": "network"},
        },
        "publication": {"guidelines": guidelines, "claims_need_agreement": True},
        "time": {"overrun_action": "queue", "unallocated_action": "allow",
                 "allocations": [{"facility_class": "1m0", "facility_code": "", "semester": semester, "hours": hours}]},
        "notifications": [
            {"event": "claim.overlap", "roles": ["admin", "member"], "users": [], "channels": ["inbox", "email"],
             "conditions": [], "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "UTC"},
             "quiet_action": "hold", "digest": "immediate", "urgent_bypasses_quiet": True},
            {"event": "allocation.overrun", "roles": ["admin"], "users": [], "channels": ["inbox"], "conditions": [],
             "quiet_hours": None, "quiet_action": "hold", "digest": "daily", "urgent_bypasses_quiet": True},
        ],
    }


def load(*, stdout: TextIO) -> None:
    """Create the demo teams, their policies, a second demo user, an interest and a claim (idempotent)."""
    from django.contrib.auth import get_user_model
    from tom_targets.models import Target

    from . import clock
    from .models import Claim, Team
    from .selectors import semester_of, team_role_of
    from .services import (
        audience_members_sync,
        claim_propose,
        policy_update,
        target_record_interest,
        team_create,
        team_member_set,
    )

    user_model = get_user_model()
    demo = user_model.objects.get(username="demo")
    partner, created = user_model.objects.get_or_create(username="demo-sn", defaults={"email": "demo-sn@localhost", "first_name": "Nova"})
    if created:
        partner.set_password(DEMO_PASSWORD)
        partner.save()
    now = clock.now()
    semester = semester_of(now)
    specs = (
        ("bulge-watch", "Bulge Watch", demo, _document(partners=["nearby-sne"], photometry_days=14, release_to="network",
                                                       guidelines="Co-authorship for every team that contributed data or time.",
                                                       semester=semester, hours=60)),
        ("nearby-sne", "Nearby SNe", partner, _document(partners=[], photometry_days=0, release_to="network",
                                                        guidelines="Real-time sharing; ATels by whoever observes first.",
                                                        semester=semester, hours=40)),
    )
    teams = {}
    created_now = []
    for slug, name, admin, doc in specs:  # both teams first: one names the other as a partner
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            team = team_create(name=name, slug=slug, admins=[admin], description=doc["publication"]["guidelines"])
            created_now.append(slug)
            stdout.write(f"  team {name} (admin: {admin.get_username()})\n")
        teams[slug] = team
    for slug, _, admin, doc in specs:
        if slug in created_now:
            policy_update(team=teams[slug], by=admin, document=doc, comment="demo policy")
    if team_role_of(user=demo, team=teams["nearby-sne"]) is None:
        team_member_set(team=teams["nearby-sne"], user=demo, role="observer", by=partner)
    audience_members_sync()
    bulge = Target.objects.filter(name="OGLE-2016-BLG-1195").first()
    if bulge is not None:
        target_record_interest(target=bulge, team=teams["bulge-watch"].group, source="demo")
        if not Claim.objects.filter(team=teams["bulge-watch"].group, target=bulge).exists():
            claim_propose(team=teams["bulge-watch"].group, by=demo, title="Planet search in OGLE-2016-BLG-1195",
                          scope="Point-lens and planetary fits; paper with all contributing teams.", target=bulge,
                          exclusive_until=now + timedelta(days=90), expires_at=now + timedelta(days=365))
    for name in ("SN 2023ixf", "SN 2011fe"):
        target = Target.objects.filter(name=name).first()
        if target is not None:
            target_record_interest(target=target, team=teams["nearby-sne"].group, source="demo")
    stdout.write(f"  {Team.objects.count()} teams; demo user is admin of Bulge Watch, observer in Nearby SNe\n")
