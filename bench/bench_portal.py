"""Benchmark the facility adapter against Baton's simulated network: round trips over real HTTP.

Serves Baton (WSGI, threaded) on a free loopback port inside this process and
drives its ``/sim/`` portal with `observatories.adapters.PortalClient`:

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/baton_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/bench_portal.py --n 50

Baseline: the smallest authenticated round trip to the same server
(``GET /sim/api/clock/``, one indexed read). Figures: milliseconds per
adapter call and per simulated observation decided by a tick, and each as a
ratio to the baseline (a submit is three HTTP calls: the idempotency lookup,
the POST, the observation read). The database is migrated if needed; the rows
the benchmark makes are deleted at the end. Bounded: at most ``--n``
submissions, loopback only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from tqdm import tqdm  # noqa: E402

EVENING = datetime(2026, 6, 15, 20, 0, tzinfo=UTC)
MORNING = datetime(2026, 6, 16, 12, 0, tzinfo=UTC)
PREFIX = "bench-portal-"


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return


def _timed(label: str, n: int, call: Callable[[int], object]) -> float:
    """Mean milliseconds of ``call(i)`` over i < n, with a progress bar."""
    durations = []
    for i in tqdm(range(n), desc=label, leave=False):
        started = time.perf_counter()
        call(i)
        durations.append(time.perf_counter() - started)
    return 1000.0 * statistics.fmean(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="submissions (and status, cancel calls) to time")
    args = parser.parse_args()
    n = max(1, min(args.n, 500))

    call_command("migrate", verbosity=0)
    from observatories.adapters import Exposure, portal_client_for, request_group_payload
    from observatories.models import Facility, Instrument
    from observatories.network import network_load
    from observatories.simnet.auth import simnet_token
    from observatories.simnet.models import SimRequestGroup, SimWeatherOverride
    from observatories.simnet.services import sim_clock_set, sim_tick, sim_weather_set

    network_load()
    server = make_server("127.0.0.1", 0, __import__("tomsite.wsgi").wsgi.application, _ThreadedServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings.BATON_BASE_URL = base
    facility = Facility.objects.select_related("site").get(code="lsc-1m0-a")
    instrument = Instrument.objects.select_related("facility__site").get(code="lsc-1m0-a-sinistro")
    payload = request_group_payload(
        target_name="OGLE-2016-BLG-1195", ra_deg=268.5317917, dec_deg=-30.4728056, instrument=instrument,
        exposures=[Exposure(filter="V", exposure_time_s=60, count=2)], window_start=EVENING, window_end=MORNING,
        target_mag=16.0, proposal=facility.default_proposal,
    )
    try:
        sim_clock_set(now=EVENING)
        sim_weather_set(site=facility.site, state="clear", hours=24)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {simnet_token()}"
        baseline = _timed("baseline GET /sim/api/clock/", n, lambda i: session.get(f"{base}/sim/api/clock/", timeout=10).raise_for_status())
        client = portal_client_for(facility, session=session)
        ids: list[str] = []
        submit = _timed("submit", n, lambda i: ids.append(client.submit(payload=payload, idempotency_key=f"{PREFIX}{i}").remote_id))
        resubmit = _timed("submit again (same key)", n, lambda i: client.submit(payload=payload, idempotency_key=f"{PREFIX}{i}"))
        status = _timed("status", n, lambda i: client.status(remote_id=ids[i]))
        cancel_n = n // 2
        cancel = _timed("cancel", cancel_n, lambda i: client.cancel(remote_id=ids[i])) if cancel_n else float("nan")
        started = time.perf_counter()
        tick = sim_tick(now=MORNING)
        tick_ms = 1000.0 * (time.perf_counter() - started) / max(1, tick.completed + tick.failed)
        completed = _timed("status of completed (with photometry)", n - cancel_n, lambda i: client.status(remote_id=ids[cancel_n + i]))
    finally:
        SimRequestGroup.objects.filter(name__startswith=PREFIX).delete()
        SimWeatherOverride.objects.filter(site=facility.site, start=EVENING).delete()
        sim_clock_set(now=datetime.now(tz=UTC))
        server.shutdown()

    print(f"Portal adapter over HTTP against Baton's simulator ({n} requests, loopback, threaded WSGI)")
    print(f"  baseline: authenticated GET /sim/api/clock/          {baseline:7.2f} ms   1.0x")
    for label, value in [
        ("submit (lookup + POST + observation read)", submit),
        ("submit again, same key (lookup only)", resubmit),
        ("status (group + observations)", status),
        ("cancel (POST + observations)", cancel),
        ("status of a completed request", completed),
    ]:
        print(f"  {label:<45s} {value:7.2f} ms {value / baseline:5.1f}x")
    print(f"  sim tick: {tick.completed} completed, {tick.failed} failed, {tick_ms:.2f} ms per observation decided")


if __name__ == "__main__":
    main()
