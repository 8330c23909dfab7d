"""Exporting the selection-function ledger: rows per second and peak memory at 100k and 1M
candidates, streamed CSV and Parquet against a naive in-memory export.

    .venv/bin/python bench/bench_ledger.py                   # 1,000,000 candidates; exports of 100k and 1M
    .venv/bin/python bench/bench_ledger.py --candidates 200000 --sizes 20000,200000

Runs against the configured DATABASE_URL in a throwaway database ``<name>_ledger_bench`` that it
creates and drops. Setup writes, with set-based SQL: 100,000 targets; the candidates (one a
second of ingest time, a classifier score each); one ledger row each against a snapshot of 10
team filters and 5 watch regions (first-failing-clause bytes drawn from 16 patterns, 1% inside
a region); 10,000 trigger firings (60% with an observing request in assorted states and planner
outcomes, 40% refused, half of those by the allocation); 5,000 labels.

Each measurement runs in a fresh child process (so its peak RSS is its own): the export of the
first N candidates of the period, every byte produced and counted, nothing kept.

- baton CSV: ``csv_stream(COLUMNS, ledger_rows(...))``, the API's streamed CSV (all columns,
  reasons, filter and region outcomes, labels);
- baton Parquet: ``parquet_stream`` (zstd, 20,000-row groups) over the same rows;
- naive (baseline): ``list(queryset.values(...))`` of the candidate and ledger columns (no
  reasons, no joins: less work than Baton does), then ``csv.DictWriter`` into memory, as a
  quick export view would.

Peak memory is the child's peak RSS (VmHWM, reset just before) minus its RSS before the export
(Django loaded, connected; for Parquet, pyarrow loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

BASE = datetime(2026, 6, 1, tzinfo=UTC)
N_TARGETS = 100_000
N_FIRINGS = 10_000
N_LABELS = 5_000


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {key} in /proc/self/status")


def rss_reset_peak() -> None:
    """Start the peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def rss_peak_mb() -> float:
    return _status_mb("VmHWM")


def rss_now_mb() -> float:
    return _status_mb("VmRSS")


# --------------------------------------------------------------------------------------
# Setup


def create_database() -> tuple[str, str]:
    db = settings.DATABASES["default"]
    original = db["NAME"]
    db.setdefault("TEST", {})["NAME"] = f"{db['NAME']}_ledger_bench"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    cfg = connection.settings_dict
    auth = urllib.parse.quote(cfg.get("USER") or "", safe="")
    if cfg.get("PASSWORD"):
        auth += ":" + urllib.parse.quote(cfg["PASSWORD"], safe="")
    host = urllib.parse.quote(cfg.get("HOST") or "", safe="")
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{name}", original


def populate(n: int) -> int:
    """Targets, candidates, ledger rows, firings, requests and labels; returns the team id."""
    from django.contrib.auth.models import Group, User

    from candidates.models import LedgerSnapshot, StreamFilterVersion, TriggerRule
    from candidates.services import filter_create, region_create
    from observatories.scheduling.models import ObservingRequest

    rng = np.random.default_rng(2026)
    team = Group.objects.create(name="survey team")
    user = User.objects.create_user(username="vetter", password=secrets.token_urlsafe())
    user.groups.add(team)
    filters = [filter_create(name=f"filter-{i}", team=team, predicates=[
        {"field": "mag", "op": "<", "value": 18 + i * 0.3}, {"field": "band", "op": "in", "value": ["g", "r"]},
        {"field": "score", "classifier": "rb", "class": "real", "op": ">=", "value": 0.5}]) for i in range(10)]
    regions = [region_create(name=f"field-{i}", kind="cone", team=team, spec={"ra": 30.0 * i, "dec": 0.0, "radius": 1.0})
               for i in range(5)]
    versions = [StreamFilterVersion.objects.get(filter=f).pk for f in filters]
    snapshot = LedgerSnapshot.objects.create(digest="bench", filter_versions=versions, regions=[r.pk for r in regions],
                                             region_versions=[1] * len(regions))
    patterns = [bytes(rng.choice([-1, 0, 1, 2], size=len(versions)).astype(np.int8).tobytes()) for _ in range(16)]
    rules = [TriggerRule.objects.create(team=team, name=f"rule-{i}", filter=filters[i]) for i in range(3)]

    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tom_targets_basetarget (name, type, created, modified, scheme, permissions, shared_by, "
            "shared_from, ra, dec, epoch) SELECT 'lb-' || i, 'SIDEREAL', now(), now(), '', 'PRIVATE', '', '', "
            "random() * 360, degrees(asin(2 * random() - 1)), 2000 FROM generate_series(1, %s) i", [N_TARGETS])
        cursor.execute("SELECT min(id) FROM tom_targets_basetarget WHERE name LIKE 'lb-%%'")
        t0 = cursor.fetchone()[0]
        step = 200_000
        for start in range(0, n, step):
            stop = min(n, start + step)
            cursor.execute(
                """
                INSERT INTO candidates_candidate (broker, alert_id, object_id, target_id, time, ra, dec, band, mag,
                    mag_err, classifications, galactic_lat, separation, schema, raw, received_at, created_at)
                SELECT 'bench', 'a' || i, 'o' || (i %% %(t)s), %(t0)s + (i %% %(t)s), %(base)s + i * interval '1 second',
                    random() * 360, random() * 180 - 90, (ARRAY['g', 'r', 'i'])[1 + i %% 3], 16 + random() * 8, 0.05,
                    jsonb_build_array(jsonb_build_object('classifier', 'rb', 'version', '1', 'class', 'real',
                                                         'score', round(random()::numeric, 3))),
                    30.0, 0, 'bench', '{}'::jsonb, %(base)s + i * interval '1 second', %(base)s + i * interval '1 second'
                FROM generate_series(%(a)s, %(b)s) i
                """,
                {"t": N_TARGETS, "t0": t0, "base": BASE, "a": start + 1, "b": stop},
            )
            print(f"  {stop:,} candidates", flush=True)
        cursor.execute(
            """
            INSERT INTO candidates_ledgerentry (candidate_id, ingested_at, snapshot_id, filter_fail, region_hits)
            SELECT c.id, c.created_at, %s, (%s::bytea[])[1 + (c.id %% 16)],
                CASE WHEN c.id %% 100 = 0 THEN ARRAY[%s]::bigint[] ELSE '{}' END
            FROM candidates_candidate c
            """,
            [snapshot.pk, patterns, regions[0].pk],
        )
        cursor.execute("SELECT id, target_id FROM candidates_candidate ORDER BY id LIMIT %s", [3 * N_FIRINGS])
        chosen = cursor.fetchall()[::3]
    outcomes = ["planned", "never visible", "window too short", "outranked", "under target", ""]
    states = ["pending", "planned", "dispatched", "completed", "expired", "cancelled"]
    n_requests = int(N_FIRINGS * 0.6)
    requests = ObservingRequest.objects.bulk_create([
        ObservingRequest(target_id=target_id, team=team, telescope_class="1m0",
                         exposures=[{"filter": "rp", "exposure_s": 60.0, "count": 1}], window_start=BASE,
                         window_end=BASE + timedelta(days=2), state=states[i % len(states)],
                         plan_outcome=outcomes[(i // 6) % len(outcomes)], source="bench")
        for i, (_, target_id) in enumerate(chosen[:n_requests])
    ], batch_size=2000)  # fmt: skip
    refs = [str(r.pk) for r in requests] + [""] * (len(chosen) - n_requests)
    statuses = ["requested"] * n_requests + ["failed"] * (len(chosen) - n_requests)
    errors = [""] * n_requests + [
        "RequestInvalid: allocation: no allocation for 2m0 in 2026A" if i % 2 else "RequestInvalid: window: it is already over"
        for i in range(len(chosen) - n_requests)
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO candidates_triggerfiring (rule_id, target_id, candidate_id, created_at, fit, request_params,
                status, request_ref, error)
            SELECT %s, t, c, %s, '{}', '{}', s, r, e FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[],
                %s::text[]) AS q(c, t, s, r, e)
            """,
            [rules[0].pk, BASE, [c for c, _ in chosen], [t for _, t in chosen], statuses, refs, errors],
        )
        cursor.execute(
            """
            INSERT INTO candidates_candidatelabel (candidate_id, team_id, user_id, verdict, label_class, note,
                created_at, updated_at)
            SELECT id, %s, %s, CASE WHEN id %% 3 = 0 THEN 'bogus' ELSE 'real' END, '', '', now(), now()
            FROM candidates_candidate WHERE id %% 200 = 0 ORDER BY id LIMIT %s
            """,
            [team.pk, user.pk, N_LABELS],
        )
        cursor.execute("ANALYZE")
    print(f"  setup SQL {time.perf_counter() - t:.1f} s", flush=True)
    return int(team.pk)


# --------------------------------------------------------------------------------------
# Measurements (each in a child process)


def measure(method: str, team_id: int, size: int) -> dict[str, Any]:
    from candidates import ledger
    from candidates.exports import csv_stream, parquet_stream

    start, end = BASE, BASE + timedelta(seconds=size + 0.5)
    if method == "parquet":
        import pyarrow.parquet  # noqa: F401 - loaded before the count: the library is not the export
    connection.ensure_connection()
    before = rss_now_mb()
    rss_reset_peak()
    t = time.perf_counter()
    n_bytes = 0
    rows = size
    if method == "naive":
        import csv
        import io

        from candidates.models import Candidate

        fields = ["id", "broker", "alert_id", "object_id", "target_id", "target__name", "time", "ra", "dec", "band",
                  "mag", "mag_err", "classifications", "ledger__ingested_at", "ledger__filter_fail",
                  "ledger__region_hits"]
        data = list(Candidate.objects.filter(ledger__ingested_at__gte=start, ledger__ingested_at__lt=end)
                    .order_by("id").values(*fields))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(data)
        n_bytes = len(out.getvalue().encode())
        rows = len(data)
    else:
        scope = ledger.Scope(team_id=team_id)
        stream = csv_stream if method == "csv" else parquet_stream
        for piece in stream(ledger.COLUMNS, ledger.ledger_rows(scope=scope, start=start, end=end)):
            n_bytes += len(piece)
    seconds = time.perf_counter() - t
    peak = rss_peak_mb()
    return {"method": method, "size": size, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "bytes": n_bytes, "peak_mb": peak - before}


def child(url: str, method: str, team_id: int, size: int) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(  # noqa: S603 - this script, with our own arguments
        [sys.executable, __file__, "--child", method, "--team", str(team_id), "--size", str(size)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="100000,1000000", help="export sizes (rows), comma-separated")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--team", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.team, args.size)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    url, original = create_database()
    results: list[dict[str, Any]] = []
    try:
        t = time.perf_counter()
        print(f"setup: {args.candidates:,} candidates ...", flush=True)
        team_id = populate(args.candidates)
        setup_s = time.perf_counter() - t
        connection.close()
        for size in sizes:
            for method in ("csv", "parquet", "naive"):
                result = child(url, method, team_id, size)
                print(f"  {method:8s} {size:>9,} rows: {result['rows_per_s']:>9,.0f} rows/s, peak +{result['peak_mb']:.0f} MB",
                      flush=True)
                results.append(result)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(original, verbosity=0)

    print()
    print(f"setup: {args.candidates:,} candidates with ledger rows, {N_FIRINGS:,} firings, {N_LABELS:,} labels "
          f"({setup_s:.0f} s)")
    print()
    print("| export | rows | seconds | rows/s | output | peak memory (RSS over start) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    names = {"csv": "baton CSV (streamed)", "parquet": "baton Parquet (streamed, row groups)",
             "naive": "naive list(values()) + csv (baseline)"}
    for r in results:
        print(f"| {names[r['method']]} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | "
              f"{r['bytes'] / 2**20:,.0f} MiB | {r['peak_mb']:,.0f} MB |")
    by = {(r["method"], r["size"]): r for r in results}
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        print()
        for method in ("csv", "parquet", "naive"):
            a, b = by[(method, small)], by[(method, large)]
            print(f"{names[method]}: memory at {large:,} / at {small:,} rows = "
                  f"{b['peak_mb'] / max(a['peak_mb'], 1):.1f}x (rows x{large / small:.0f})")
        for method in ("csv", "parquet"):
            r, base = by[(method, large)], by[("naive", large)]
            print(f"{names[method]} vs naive at {large:,} rows: memory {base['peak_mb'] / max(r['peak_mb'], 1):.0f}x "
                  f"less, speed {r['rows_per_s'] / base['rows_per_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
