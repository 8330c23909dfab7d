"""Team policies at scale: projecting policies onto guardian permissions, and reading through the door.

Builds, in a throwaway database ``<name>_polbench`` (created, migrated, dropped), a
network of teams that own photometry on shared targets, then times:

* **record**: ``data_record_ownership`` of one team's points (ownership rows, the
  grants to the team and its partners, target grants), per 1,000 points; and of
  public survey data (no owning team: one grant to TOM's ``Public`` group);
* **project**: ``team_grants_sync`` of one team's whole policy (what a policy change
  costs), against the baseline ``guardian.shortcuts.assign_perm(perm, group, queryset)``
  (django-guardian's own bulk assignment) granting the same rows to one group;
* **release**: the ``data_release_due`` beat task with nothing due, and with 10% due;
* **read**: one target's light curve through the door (``reduced_data_visible_to``),
  against the baseline TOM runs for its photometry tab (``get_objects_for_user`` on
  the target's points), and one datum's decision (``datum_access``) against
  ``user.has_perm`` on it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/baton REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/bench_policies.py [--teams 10] [--points 100000] [--targets 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
for knob in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(knob, "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from guardian.models import GroupObjectPermission  # noqa: E402
from guardian.shortcuts import assign_perm, get_objects_for_user  # noqa: E402
from tqdm import tqdm  # noqa: E402

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Median wall time of ``fn`` in seconds over ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def build(*, n_teams: int, n_points: int, n_targets: int, rng: random.Random) -> dict[str, Any]:
    from tom_dataproducts.models import PhotometryReducedDatum
    from tom_targets.models import Target

    from policies.services import data_record_ownership, policy_update, target_record_interest, team_create

    users = get_user_model()
    admins = [users.objects.create_user(username=f"pi{i}", password=None) for i in range(n_teams)]
    teams = [team_create(name=f"Team {i}", slug=f"team-{i}", admins=[admins[i]], now=T0 - timedelta(days=400))
             for i in range(n_teams)]
    for i, team in enumerate(teams):
        days = (0, 14, 30, 90)[i % 4]
        partner = [teams[(i + 1) % n_teams].slug]
        policy_update(team=team, by=admins[i], now=T0 - timedelta(days=400), document={
            "sharing": {"photometry": {"partners": partner, "proprietary_days": days, "release_to": "network"},
                        "requests": {"partners": [], "proprietary_days": 0, "release_to": "network"}}})
    targets = Target.objects.bulk_create(
        [Target(name=f"AT bench {i}", type="SIDEREAL", ra=rng.uniform(0, 360), dec=rng.uniform(-60, 30), epoch=2000.0)
         for i in range(n_targets)])
    for target in tqdm(targets, desc="interests", unit="target", leave=False):
        for team in rng.sample(teams, 2):
            target_record_interest(target=target, team=team.group, since=T0 - timedelta(days=60), now=T0 - timedelta(days=60))
    per_team = n_points // n_teams
    record_times = []
    for team in tqdm(teams, desc="data", unit="team", leave=False):
        points = PhotometryReducedDatum.objects.bulk_create([
            PhotometryReducedDatum(target=rng.choice(targets), timestamp=T0 - timedelta(days=rng.uniform(0, 120)),
                                   bandpass=rng.choice("gri"), brightness=rng.uniform(14, 21), reduction_version=str(k))
            for k in range(per_team)
        ])
        start = time.perf_counter()
        for chunk in range(0, len(points), 1000):
            data_record_ownership(data=points[chunk:chunk + 1000], team=team.group, kind="photometry", now=T0, backfill=True)
        record_times.append((time.perf_counter() - start) / (len(points) / 1000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"teams": teams, "admins": admins, "targets": targets, "record_per_1000": statistics.median(record_times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    db = settings.DATABASES["default"]
    original = db["NAME"]
    db.setdefault("TEST", {})["NAME"] = f"{original}_polbench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from tom_dataproducts.models import PhotometryReducedDatum

        from policies.access import datum_access, reduced_data_visible_to
        from policies.grants import team_grants_sync
        from policies.models import DataOwnership
        from policies.services import data_record_ownership, data_release_due

        print(f"network: {args.teams} teams, {args.points:,} photometry points on {args.targets:,} targets")
        world = build(n_teams=args.teams, n_points=args.points, n_targets=args.targets, rng=rng)
        team, other = world["teams"][1], world["teams"][5 % args.teams]
        rows = DataOwnership.objects.filter(team=team.group).count()
        print(f"grant rows after setup: {GroupObjectPermission.objects.count():,}")

        print(f"\nrecord ownership (per 1,000 points, grants included): {world['record_per_1000'] * 1000:.0f} ms")
        survey = PhotometryReducedDatum.objects.bulk_create([
            PhotometryReducedDatum(target=rng.choice(world["targets"]), timestamp=T0, bandpass="z", brightness=rng.uniform(14, 21))
            for _ in range(1000)])
        public = timed(lambda: data_record_ownership(data=survey, team=None, kind="photometry", now=T0))
        print(f"record public survey data (team None, per 1,000 points): {public * 1000:.0f} ms")

        project = timed(lambda: team_grants_sync(team=team.group, now=T0), repeat=3)
        baseline_group = Group.objects.create(name="bench baseline")
        datum_rows = PhotometryReducedDatum.objects.filter(pk__in=DataOwnership.objects.filter(team=team.group).values("object_id"))
        baseline = timed(lambda: assign_perm("tom_dataproducts.view_photometryreduceddatum", baseline_group, datum_rows))
        print(f"project one team's policy ({rows:,} points, all its targets): {project * 1000:.0f} ms")
        print(f"baseline guardian assign_perm on the same {rows:,} points, one group: {baseline * 1000:.0f} ms"
              f"  (ratio {baseline / project:.1f}x)")

        idle = timed(lambda: data_release_due(now=T0), repeat=5)
        DataOwnership.objects.filter(pk__in=DataOwnership.objects.filter(team=team.group).values("pk")[: rows // 10]).update(
            released_at=None, acquired_at=T0 - timedelta(days=400))
        due = timed(lambda: data_release_due(now=T0))
        print(f"\nrelease beat, nothing due ({args.teams} teams): {idle * 1000:.0f} ms")
        print(f"release beat, {rows // 10:,} points due: {due * 1000:.0f} ms")

        user = world["admins"][5 % args.teams]
        busiest = max(world["targets"], key=lambda t: PhotometryReducedDatum.objects.filter(target=t).count())
        n_points = PhotometryReducedDatum.objects.filter(target=busiest).count()
        door = timed(lambda: list(reduced_data_visible_to(user=user, target=busiest, now=T0)), repeat=11)
        tom = timed(lambda: list(get_objects_for_user(user, "tom_dataproducts.view_photometryreduceddatum",
                                                      klass=PhotometryReducedDatum.objects.filter(target=busiest))), repeat=11)
        visible = len(reduced_data_visible_to(user=user, target=busiest, now=T0))
        print(f"\none light curve ({n_points} points, {visible} visible to a member of {other}):")
        print(f"  door reduced_data_visible_to: {door * 1000:.1f} ms")
        print(f"  baseline TOM get_objects_for_user: {tom * 1000:.1f} ms  (ratio {door / tom:.2f}x)")
        datum = PhotometryReducedDatum.objects.filter(target=busiest).first()
        decision = timed(lambda: datum_access(user=user, datum=datum, now=T0), repeat=21)
        has_perm = timed(lambda: user.has_perm("tom_dataproducts.view_photometryreduceddatum", datum), repeat=21)
        print(f"one datum: datum_access {decision * 1000:.1f} ms, baseline user.has_perm {has_perm * 1000:.1f} ms "
              f"(ratio {decision / has_perm:.1f}x)")
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
