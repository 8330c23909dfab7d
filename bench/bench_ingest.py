"""Ingest throughput at LSST visit scale: a 10,000-alert burst through the push endpoint and
through the stream consumer, with 100 filters and 1,000 watch regions active.

    .venv/bin/python bench/bench_ingest.py                      # 10,000 alerts, 100,000 targets
    .venv/bin/python bench/bench_ingest.py --targets 1000000    # cost per alert as targets grow

Runs against the configured DATABASE_URL / REDIS_URL (PostgreSQL and Redis on 127.0.0.1 by
default) in a throwaway database ``<name>_bench`` that it creates and drops, with a Celery
queue of its own. It starts a real gunicorn (the push endpoint) and a real Celery worker.

The alerts are the real Rubin sample packet shipped in ``lsst-alert-packet`` (schema 11.1,
with its two earlier diaSources), replayed with new ids, positions spread over one LSST field
(3.5 deg across), and fluxes spread over 17-24 mag; 10% fall on targets already known. They
are pushed as Avro containers of ``--batch-size`` alerts, as a broker would.

The stream runs through ``--consumers`` consumer processes at once (each a partition of the
messages, as Kafka gives each consumer of a group its partitions; production runs several), and
the bench then checks that no alert was lost and no object got two targets. ``--in-process``
alerts are also ingested in this process from parsed packets, timed per chunk: wall time, this
process's CPU and the PostgreSQL backend's CPU (read from /proc) per alert.

Figures: alerts per second end to end (from the first request to the last batch stored,
matched and its targets updated), and per-alert latency from arrival (the request's batch
received) to done (its batch finished), p50/p99 -- conservative: an alert counts as done only
when its whole batch is. The baseline, run in the same process on the same alerts, is TOM
Toolkit's own path: ``GenericAlert.to_target()``, ``Target.save()`` and one ``ReducedDatum``
per alert (the brief quotes 181 alerts/s for it).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
for knob in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(knob, "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# A stream consumer process (spawned, see stream_parallel) inherits the parent's queue and bench database.
QUEUE = os.environ.get("BENCH_QUEUE") or f"bench-{uuid.uuid4().hex[:8]}"
os.environ["BENCH_QUEUE"] = os.environ["CELERY_QUEUE"] = QUEUE
if os.environ.get("BENCH_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]

import django  # noqa: E402

django.setup()

import astropy.units as u  # noqa: E402
import fastavro  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402
from astropy.coordinates import Latitude, Longitude  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from mocpy import MOC  # noqa: E402
from tqdm import tqdm  # noqa: E402

LSST_ALERTS_PER_NIGHT = 10_000_000
LSST_VISIT_ALERTS = 10_000
LSST_VISIT_SECONDS = 40.0
TOM_TO_TARGET_RATE = 181.0  # alerts/s, TOM's to_target + ReducedDatum path (from the brief)
FIELD = (150.0, 2.2)  # a pointing (COSMOS)


def sample_record() -> tuple[dict[str, Any], dict[str, Any]]:
    from importlib.util import find_spec

    spec = find_spec("lsst.alert.packet")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("lsst-alert-packet is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "schema" / "11" / "1" / "sample_data" / "fakeAlert.avro"
    reader = fastavro.reader(io.BytesIO(path.read_bytes()))
    return cast(dict[str, Any], reader.writer_schema), cast(dict[str, Any], next(iter(reader)))


def make_records(n: int, *, start_id: int, known: list[tuple[float, float]], rng: random.Random) -> list[dict[str, Any]]:
    """``n`` copies of the real sample alert with new ids, positions in one field and spread fluxes."""
    _, record = sample_record()
    records = []
    for i in range(n):
        if known and i % 10 == 0:
            ra, dec = known[(i // 10) % len(known)]
            ra, dec = ra + rng.uniform(-0.3, 0.3) / 3600, dec + rng.uniform(-0.3, 0.3) / 3600
        else:
            ra = FIELD[0] + rng.uniform(-1.75, 1.75) / np.cos(np.radians(FIELD[1]))
            dec = FIELD[1] + rng.uniform(-1.75, 1.75)
        flux = 10 ** (-0.4 * (rng.uniform(17, 24) - 31.4))
        base = start_id + 10 * i
        source = dict(record["diaSource"], diaSourceId=base, diaObjectId=base + 1, ra=ra, dec=dec, psfFlux=flux,
                      psfFluxErr=flux * rng.uniform(0.01, 0.1), reliability=rng.uniform(0, 1))
        previous = [dict(p, diaSourceId=base + 2 + k, diaObjectId=base + 1, ra=ra, dec=dec,
                         psfFlux=flux * rng.uniform(0.5, 1.0)) for k, p in enumerate(record["prvDiaSources"] or [])]
        records.append(dict(record, diaSourceId=base, diaSource=source, prvDiaSources=previous))
    return records


def container(records: list[dict[str, Any]]) -> bytes:
    schema, _ = sample_record()
    out = io.BytesIO()
    fastavro.writer(out, schema, records)
    return out.getvalue()


def frames(records: list[dict[str, Any]]) -> list[bytes]:
    schema, _ = sample_record()
    parsed = fastavro.parse_schema(schema)
    out = []
    for record in records:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, record)
        out.append(b"\x00" + (1101).to_bytes(4, "big") + buf.getvalue())
    return out


# --------------------------------------------------------------------------------------
# Setup


def create_database() -> tuple[str, str]:
    """A fresh ``<name>_bench`` database, migrated; returns its DATABASE_URL and the original name."""
    db = settings.DATABASES["default"]
    original = db["NAME"]
    db.setdefault("TEST", {})["NAME"] = f"{db['NAME']}_bench"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    cfg = connection.settings_dict
    auth = urllib.parse.quote(cfg.get("USER") or "", safe="")
    if cfg.get("PASSWORD"):
        auth += ":" + urllib.parse.quote(cfg["PASSWORD"], safe="")
    host = urllib.parse.quote(cfg.get("HOST") or "", safe="")
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{name}", original


def background_targets(n: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """``n`` known targets over the sky (1% of them in the bench field); returns those in the field."""
    from candidates.services import target_sky_backfill

    chunk = 100_000
    in_field: list[tuple[float, float]] = []
    with connection.cursor() as cursor:
        for start in tqdm(range(0, n, chunk), desc=f"{n:,} background targets", unit="chunk"):
            m = min(chunk, n - start)
            ra = rng.uniform(0, 360, m)
            dec = np.degrees(np.arcsin(rng.uniform(-1, 1, m)))
            k = m // 100
            ra[:k] = FIELD[0] + rng.uniform(-1.7, 1.7, k)
            dec[:k] = FIELD[1] + rng.uniform(-1.7, 1.7, k)
            in_field += list(zip(ra[:k].tolist(), dec[:k].tolist(), strict=True))
            cursor.execute(
                "INSERT INTO tom_targets_basetarget (name, type, created, modified, scheme, permissions, shared_by, "
                "shared_from, ra, dec, epoch) SELECT 'bg-' || (%s + i), 'SIDEREAL', now(), now(), '', 'PRIVATE', '', "
                "'', r, d, 2000 FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS q(r, d, i)",
                [start, ra.tolist(), dec.tolist()],
            )
        target_sky_backfill()
    return in_field


def filters_and_regions(n_filters: int, n_regions: int, rng: random.Random) -> None:
    from django.contrib.auth.models import Group

    from candidates.services import filter_create, region_create

    teams = [Group.objects.create(name=f"team-{i}") for i in range(20)]
    for i in tqdm(range(n_filters), desc=f"{n_filters} filters", unit="filter"):
        # Selective, as a team's filter is: about 1% of the stream passes each.
        predicates: list[dict[str, Any]] = [{"field": "mag", "op": "<", "value": round(rng.uniform(17.0, 17.35), 3)}]
        kind = i % 4
        if kind == 0:
            predicates.append({"field": "band", "op": "in", "value": rng.sample(["u", "g", "r", "i", "z", "y"], 2)})
        elif kind == 1:
            predicates.append({"field": "score", "classifier": "rubin-reliability", "class": "real", "op": ">=",
                               "value": round(rng.uniform(0.5, 0.99), 2)})
        elif kind == 2:
            predicates.append({"field": "rise_rate", "op": ">", "value": round(rng.uniform(-0.5, 0.5), 2)})
        else:
            predicates.append({"field": "abs_galactic_latitude", "op": ">", "value": round(rng.uniform(10, 60), 1)})
        filter_create(name=f"filter-{i}", team=teams[i % len(teams)], predicates=predicates)
    for i in tqdm(range(n_regions), desc=f"{n_regions} watch regions", unit="region"):
        team = teams[i % len(teams)]
        near = i % 100 == 0  # 1% of the regions overlap the bench field
        ra = (FIELD[0] + rng.uniform(-2, 2)) if near else rng.uniform(0, 360)
        dec = (FIELD[1] + rng.uniform(-2, 2)) if near else float(np.degrees(np.arcsin(rng.uniform(-0.95, 0.95))))
        radius = rng.uniform(0.05, 2.0)
        if i % 20 == 1:
            d = radius
            region_create(name=f"poly-{i}", kind="polygon", team=team, spec={"vertices": [
                [ra % 360, dec - d], [(ra + d) % 360, dec], [ra % 360, min(dec + d, 89.0)], [(ra - d) % 360, dec]]})
        elif i % 20 == 2:
            moc = MOC.from_cone(Longitude(ra * u.deg), Latitude(dec * u.deg), radius=radius * u.deg, max_depth=9)
            region_create(name=f"map-{i}", kind="moc", team=team, spec={"moc": moc.to_string()})
        else:
            region_create(name=f"cone-{i}", kind="cone", team=team, spec={"ra": ra % 360, "dec": dec, "radius": radius})


# --------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)  # noqa: S603


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_http(url: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            requests.get(url, timeout=10)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {deadline} s")


def wait_batches(ids: list[str], deadline: float = 600.0) -> None:
    from candidates.models import AlertBatch, BatchStatus

    end = time.monotonic() + deadline
    with tqdm(total=len(ids), desc="batches processed", unit="batch") as bar:
        done = 0
        while time.monotonic() < end:
            now_done = AlertBatch.objects.filter(pk__in=ids, status__in=[BatchStatus.DONE, BatchStatus.FAILED]).count()
            bar.update(now_done - done)
            done = now_done
            if done == len(ids):
                return
            time.sleep(0.05)
    raise RuntimeError("the worker did not finish in time (see .baton/bench-worker.log)")


def latencies(ids: list[str]) -> tuple[float, float, float, int, int, int]:
    """(first received -> last finished seconds, p50, p99 per alert, stored, matches, rejected)."""
    from candidates.models import AlertBatch

    batches = list(AlertBatch.objects.filter(pk__in=ids))
    per_alert = np.concatenate([
        np.full(b.n_received, (b.finished_at - b.received_at).total_seconds()) for b in batches  # type: ignore[operator]
    ])
    span = (max(b.finished_at for b in batches) - min(b.received_at for b in batches)).total_seconds()  # type: ignore[type-var,operator]
    return (span, float(np.percentile(per_alert, 50)), float(np.percentile(per_alert, 99)),
            sum(b.n_stored for b in batches), sum(b.n_matches for b in batches), sum(b.n_rejected for b in batches))


def tom_baseline(records: list[dict[str, Any]]) -> float:
    """TOM's own path per alert: GenericAlert.to_target(), Target.save(), one ReducedDatum. Alerts/s."""
    from tom_alerts.alerts import GenericAlert
    from tom_dataproducts.models import ReducedDatum

    from candidates.packets import parse_alert_batch

    alerts = parse_alert_batch(body=container(records), content_type="application/avro").alerts
    t0 = time.perf_counter()
    for alert in tqdm(alerts, desc="TOM to_target baseline", unit="alert"):
        generic = GenericAlert(timestamp=alert.time, id=alert.alert_id, name=f"tom-{alert.alert_id}", ra=alert.ra,
                               dec=alert.dec, mag=alert.mag, score=0.0, url="")
        target, extras, aliases = generic.to_target()
        target.save(extras=extras, names=aliases)
        ReducedDatum.objects.create(target=target, data_type="photometry", timestamp=alert.time, source_name="bench",
                                    value={"magnitude": alert.mag, "error": alert.mag_err, "filter": alert.band})
    return len(alerts) / (time.perf_counter() - t0)


# --------------------------------------------------------------------------------------
# Parallel stream consumers and the in-process cost per alert


def consume_partition(frames_part: list[bytes], batch_size: int, barrier: Any, out: Any) -> None:
    """One consumer process: its partition of the stream, through AlertStreamConsumer."""
    from candidates.stream import AlertStreamConsumer, StreamMessage

    messages = [StreamMessage(payload=f) for f in frames_part]
    consumer = AlertStreamConsumer(batch_size=batch_size, max_wait=5.0)
    barrier.wait()  # all consumers start together, once all have started up
    t0, cpu0 = time.time(), time.process_time()
    for message in messages:
        consumer.add(message)
    consumer.flush()
    out.put((t0, time.time(), time.process_time() - cpu0, consumer.stats.batch_ids))


def stream_parallel(frames_all: list[bytes], consumers: int, batch_size: int, url: str) -> tuple[float, float, list[str]]:
    """The stream through ``consumers`` processes on the bench database ``url``; returns (span s, consumer
    CPU s, batch ids). Spawned, not forked: a fork would share this process's Redis and database sockets."""
    import multiprocessing

    os.environ["BENCH_DATABASE_URL"] = url
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    barrier = context.Barrier(consumers)
    procs = [context.Process(target=consume_partition, args=(frames_all[k::consumers], batch_size, barrier, out))
             for k in range(consumers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=1200) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a stream consumer failed (exit code {proc.exitcode})")
    span = max(r[1] for r in results) - min(r[0] for r in results)
    return span, sum(r[2] for r in results), [b for r in results for b in r[3]]


def stream_checks(sent: int, batch_ids: list[str], since: Any) -> dict[str, int]:
    """No lost alerts, no duplicate candidates, no object with two targets (made within the match radius)."""
    from astropy.coordinates import SkyCoord

    from candidates.models import AlertBatch, Candidate, TargetSky
    from candidates.services.ingest import match_radius_arcsec

    candidates = Candidate.objects.filter(batch__in=AlertBatch.objects.filter(pk__in=batch_ids))
    stored = candidates.count()
    distinct = candidates.values("broker", "alert_id").distinct().count()
    rejected = sum(AlertBatch.objects.filter(pk__in=batch_ids).values_list("n_rejected", flat=True))
    new = np.array(list(TargetSky.objects.filter(target__created__gte=since).values_list("ra", "dec")), float).reshape(-1, 2)
    twins = 0
    if len(new) > 1:
        coords = SkyCoord(new[:, 0], new[:, 1], unit="deg")
        i, j, _, _ = coords.search_around_sky(coords, match_radius_arcsec() * u.arcsec)
        twins = int((i < j).sum())
    return {"sent": sent, "stored": stored, "lost": sent - stored - rejected, "duplicate candidates": stored - distinct,
            "targets made": len(new), "targets within the match radius of another new one": twins}


def backend_cpu_s() -> float:
    """CPU seconds (user + system) of this connection's PostgreSQL backend, from /proc (same machine)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process_cost(records: list[dict[str, Any]], chunk: int, profile: bool = False) -> dict[str, float]:
    """The ingest service on parsed packets in this process: us per alert (wall, Python CPU, PostgreSQL CPU).

    With ``profile``, cProfile runs over the ingest calls and the top functions by own time are printed.
    """
    import cProfile
    import pstats

    from django.utils import timezone

    from candidates.packets import parse_alert_batch
    from candidates.services import alerts_ingest

    alerts = parse_alert_batch(body=container(records), content_type="application/avro").alerts
    wall = cpu = pg = 0.0
    profiler = cProfile.Profile() if profile else None
    for start in range(0, len(alerts), chunk):
        part = alerts[start : start + chunk]
        pg0, cpu0, t0 = backend_cpu_s(), time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        alerts_ingest(alerts=part, received_at=timezone.now(), chunk_size=chunk)
        if profiler is not None:
            profiler.disable()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - cpu0
        pg += backend_cpu_s() - pg0
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    n = len(alerts)
    return {"wall": 1e6 * wall / n, "python": 1e6 * cpu / n, "postgres": 1e6 * pg / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=LSST_VISIT_ALERTS)
    parser.add_argument("--batch-size", type=int, default=1000, help="alerts per pushed request")
    parser.add_argument("--targets", type=int, default=100_000, help="targets known before the burst")
    parser.add_argument("--filters", type=int, default=100)
    parser.add_argument("--regions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--consumers", type=int, default=2, help="stream consumer processes at once")
    parser.add_argument("--in-process", type=int, default=2000, help="alerts ingested in this process, timed (0: skip)")
    parser.add_argument("--chunk", type=int, default=1000, help="alerts per chunk in the in-process measure")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process measure (to stderr)")
    parser.add_argument("--baseline", type=int, default=500, help="alerts through TOM's path (0: skip)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    rng = random.Random(2026)
    np_rng = np.random.default_rng(2026)
    logs = ROOT / ".baton"
    logs.mkdir(exist_ok=True)

    url, original_db = create_database()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        t = time.perf_counter()
        known = background_targets(args.targets, np_rng)
        filters_and_regions(args.filters, args.regions, rng)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have by then
        setup_s = time.perf_counter() - t
        from candidates.models import WatchRegionCell

        cells = WatchRegionCell.objects.count()

        from django.contrib.auth.models import Permission, User
        from rest_framework.authtoken.models import Token

        pusher = User.objects.create_user(username="bench-broker", password=secrets.token_urlsafe())
        pusher.user_permissions.add(Permission.objects.get(codename="add_alertbatch"))
        token = Token.objects.get_or_create(user=pusher)[0].key

        env = {**os.environ, "DATABASE_URL": url, "CELERY_QUEUE": QUEUE, "PYTHONPATH": str(ROOT)}
        port = free_port()
        procs.append(start([sys.executable, "-m", "gunicorn", "tomsite.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1",
                            "--threads", "4", "--timeout", "120"], env, logs / "bench-web.log"))
        procs.append(start([sys.executable, "-m", "celery", "-A", "tomsite", "worker", "-Q", QUEUE, "-c",
                            str(args.concurrency), "-l", "warning", "--without-gossip", "--without-mingle"], env,
                           logs / "bench-worker.log"))
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health/")
        from tomsite.celery import app

        end = time.monotonic() + 60
        while not app.control.ping(timeout=0.5) and time.monotonic() < end:
            pass
        # Warm up both processes (imports, the region index) on a small batch of other alerts.
        warm = container(make_records(50, start_id=9_000_000_000, known=[], rng=rng))
        first = requests.post(f"{base}/api/candidates/batches/", data=warm, timeout=60, headers={
            "Authorization": f"Token {token}", "Content-Type": "application/avro"}).json()  # fmt: skip
        wait_batches([first["id"]])

        # --- push: the burst through the endpoint
        records = make_records(args.alerts, start_id=1_000_000_000, known=known, rng=rng)
        bodies = [container(records[i : i + args.batch_size]) for i in range(0, len(records), args.batch_size)]
        session = requests.Session()
        session.headers.update({"Authorization": f"Token {token}", "Content-Type": "application/avro"})
        ids, accept_s = [], []
        t0 = time.perf_counter()
        for body in tqdm(bodies, desc="push requests", unit="req"):
            t = time.perf_counter()
            response = session.post(f"{base}/api/candidates/batches/", data=body, timeout=60)
            accept_s.append(time.perf_counter() - t)
            if response.status_code != 202:
                raise RuntimeError(f"push refused: {response.status_code} {response.text}")
            ids.append(response.json()["id"])
        pushed_s = time.perf_counter() - t0
        wait_batches(ids)
        push_span, push_p50, push_p99, stored, matches, rejected = latencies(ids)
        push_rate = stored / push_span

        # --- stream: the same burst as Kafka messages through --consumers consumer processes at once
        from django.utils import timezone

        stream_records = make_records(args.alerts, start_id=5_000_000_000, known=known, rng=rng)
        since = timezone.now()
        stream_s, stream_cpu, stream_ids = stream_parallel(frames(stream_records), args.consumers, args.batch_size, url)
        s_span, s_p50, s_p99, s_stored, s_matches, _ = latencies(stream_ids)
        stream_rate = s_stored / stream_s
        checks = stream_checks(args.alerts, stream_ids, since)

        cost = in_process_cost(make_records(args.in_process, start_id=7_000_000_000, known=known, rng=rng),
                               args.chunk, args.profile) if args.in_process else {}

        baseline = tom_baseline(make_records(args.baseline, start_id=8_000_000_000, known=[], rng=rng)) \
            if args.baseline else float("nan")
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep:
            connection.creation.destroy_test_db(original_db, verbosity=0)

    needed = LSST_VISIT_ALERTS / LSST_VISIT_SECONDS
    night_rate = LSST_ALERTS_PER_NIGHT / (10 * 3600)
    print()
    print(f"setup: {args.targets:,} known targets, {args.filters} filters, {args.regions} watch regions "
          f"({cells:,} HEALPix cells), {setup_s:.1f} s")
    print(f"alerts: {args.alerts:,} Rubin sample packets (schema 11.1) replayed, {args.batch_size} per request")
    print()
    print("| path | alerts stored | matches | alerts/s end to end | p50 arrival->done | p99 arrival->done |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| push endpoint + Celery ({args.concurrency} workers) | {stored:,} | {matches:,} | {push_rate:,.0f} | "
          f"{push_p50:.2f} s | {push_p99:.2f} s |")
    print(f"| stream ({args.consumers} consumer processes) | {s_stored:,} | {s_matches:,} | {stream_rate:,.0f} | "
          f"{s_p50:.2f} s | {s_p99:.2f} s |")
    print(f"| TOM to_target + ReducedDatum (baseline, {args.baseline} alerts) | | | {baseline:,.0f} | | |")
    print()
    print(f"push: {len(bodies)} requests accepted in {pushed_s:.2f} s (median {np.median(accept_s) * 1000:.0f} ms "
          f"per {args.batch_size}-alert request); rejected alerts: {rejected}")
    print(f"stream consumers' CPU: {1e6 * stream_cpu / max(s_stored, 1):,.0f} us per alert (parse + ingest, "
          f"all {args.consumers} processes)")
    print("stream checks: " + ", ".join(f"{k} {v:,}" for k, v in checks.items()))
    if cost:
        print(f"in process ({args.in_process:,} alerts, chunks of {args.chunk:,}): {cost['wall']:,.0f} us wall, "
              f"{cost['python']:,.0f} us Python CPU, {cost['postgres']:,.0f} us PostgreSQL CPU per alert "
              f"({1e6 / cost['wall']:,.0f} alerts/s in one process)")
    print(f"ratio to TOM's path measured here: push {push_rate / baseline:.0f}x, stream {stream_rate / baseline:.0f}x")
    print(f"ratio to TOM's 181 alerts/s (brief): push {push_rate / TOM_TO_TARGET_RATE:.0f}x, "
          f"stream {stream_rate / TOM_TO_TARGET_RATE:.0f}x")
    print(f"LSST: a visit ({LSST_VISIT_ALERTS:,} alerts) every {LSST_VISIT_SECONDS:.0f} s needs {needed:.0f} alerts/s "
          f"(10 M a night over 10 h is {night_rate:.0f}/s): push is {push_rate / needed:.1f}x that, "
          f"stream {stream_rate / needed:.1f}x; a visit's burst is done in {push_span:.1f} s (push) / "
          f"{stream_s:.1f} s (stream)")
    return 1 if checks["lost"] or checks["duplicate candidates"] or checks["targets within the match radius of another new one"] else 0


if __name__ == "__main__":
    sys.exit(main())
