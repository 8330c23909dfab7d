"""Keep ``TargetSky`` (the cone-match index) in step with TOM targets made or moved elsewhere."""

from __future__ import annotations

from typing import Any

from django.db import connection

from candidates.models import HPX_ORDER, TargetSky
from candidates.sky import hpx_index


def target_sky_update(*, target: Any) -> None:
    """Index (or un-index) one target from its current position; non-sidereal targets have none."""
    if target.ra is None or target.dec is None or not (-90 <= target.dec <= 90):
        TargetSky.objects.filter(target_id=target.pk).delete()
        return
    ra = float(target.ra) % 360.0
    pixel = int(hpx_index([ra], [float(target.dec)], HPX_ORDER)[0])
    TargetSky.objects.update_or_create(target_id=target.pk, defaults={"ra": ra, "dec": float(target.dec), "hpx": pixel})


def target_sky_backfill(*, chunk: int = 10_000) -> int:
    """Index every sidereal target that has no ``TargetSky`` row (e.g. made before this app); returns how many."""
    done = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT t.id, t.ra, t.dec FROM tom_targets_basetarget t LEFT JOIN candidates_targetsky s "
                "ON s.target_id = t.id WHERE s.target_id IS NULL AND t.ra IS NOT NULL AND t.dec BETWEEN -90 AND 90 "
                "ORDER BY t.id LIMIT %s",
                [chunk],
            )
            rows = cursor.fetchall()
            if not rows:
                return done
            ids, ras_in, decs = zip(*rows, strict=True)
            ras = [float(r) % 360.0 for r in ras_in]
            pixels = hpx_index(ras, decs, HPX_ORDER).tolist()
            cursor.execute(
                "INSERT INTO candidates_targetsky (target_id, ra, dec, hpx) SELECT * FROM "
                "unnest(%s::bigint[], %s::float8[], %s::float8[], %s::bigint[]) ON CONFLICT DO NOTHING",
                [list(ids), ras, [float(d) for d in decs], pixels],
            )
            done += len(rows)
