"""Shared fixtures: a real Celery worker process, users, API clients and a real browser; and the
Hypothesis profile every property-based test (schemathesis included) runs under."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BATON_CHROMIUM", "/usr/bin/chromium")

# Property-based tests draw the same examples on every run (derandomized, no example database), so a
# red suite means a regression, never bad luck. BATON_EXPLORE=1 selects the exploratory profile: fresh
# random examples on each run, failures kept in .hypothesis/ and replayed first the next time. Loaded
# here, before any test module builds its @settings, so every test inherits the choice (pytest's
# --hypothesis-profile still overrides it).
EXPLORING = os.environ.get("BATON_EXPLORE", "") not in ("", "0")
hypothesis.settings.register_profile("baton", derandomize=True, database=None, print_blob=True)
hypothesis.settings.register_profile("baton-explore", derandomize=False, print_blob=True)
hypothesis.settings.load_profile("baton-explore" if EXPLORING else "baton")


def database_url_for_current_connection() -> str:
    """The DATABASE_URL of the database this test process uses (pytest-django's test database)."""
    cfg = connection.settings_dict
    host = urllib.parse.quote(cfg.get("HOST") or "", safe="")
    auth = urllib.parse.quote(cfg.get("USER") or "", safe="")
    if cfg.get("PASSWORD"):
        auth += ":" + urllib.parse.quote(cfg["PASSWORD"], safe="")
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{cfg['NAME']}"


class WorkerProcess:
    """A ``celery worker`` subprocess on the test database, its own queue, and a known node name."""

    def __init__(self, *, concurrency: int = 1) -> None:
        self.node = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / ".baton" / "test-worker.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": database_url_for_current_connection(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
            "SECRET_KEY": settings.SECRET_KEY,
            "PYTHONPATH": str(ROOT),
            # Transactional tests flush the database under this long-lived worker (tomsite/celery.py).
            "BATON_WORKER_FRESH_CACHES": "1",
        }

    def start(self) -> None:
        from tomsite.celery import app

        self.log.parent.mkdir(exist_ok=True)
        argv = [
            sys.executable, "-m", "celery", "-A", "tomsite", "worker", "-l", "info", "-n", self.node,
            "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-c", str(self.concurrency), "--without-gossip",
            "--without-mingle",
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True)  # noqa: S603
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited at start; see {self.log}")
            if app.control.ping(destination=[self.node], timeout=0.5):
                return
        raise RuntimeError(f"the Celery worker did not answer within 60 s; see {self.log}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        """Kill the worker and its children at once, as a crash or an OOM kill would."""
        self.stop(signal.SIGKILL)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    """A real Celery worker process for the whole session, on the test database."""
    with django_db_blocker.unblock():
        worker = WorkerProcess()
        worker.start()
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def worker_quiet_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the worker, and before the database is flushed: nothing of it runs on.

    Its waiting tasks are purged, those the worker holds (prefetched or scheduled) are revoked, and
    the task running is waited for, so no task of one test truncates into (or deadlocks with) the
    next test's flush, or runs on the next test's rows.
    """
    if "celery_worker_process" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("_django_db_helper")  # set up first, so its flush comes after this teardown
    worker: WorkerProcess = request.getfixturevalue("celery_worker_process")
    yield
    from tomsite.celery import app

    app.control.purge()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.proc is None or worker.proc.poll() is not None:
            return
        inspect = app.control.inspect(destination=[worker.node], timeout=1.0)
        held = [t for tasks in (inspect.reserved() or {}).values() for t in tasks]
        held += [t.get("request", t) for tasks in (inspect.scheduled() or {}).values() for t in tasks]
        for task in held:
            app.control.revoke(task["id"], destination=[worker.node])
        active = [t for tasks in (inspect.active() or {}).values() for t in tasks]
        if not active and not held:
            return
        time.sleep(0.2)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="correct horse battery")


@pytest.fixture
def api_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def chromium_available() -> str | None:
    """None if a browser can be driven, else the reason it cannot."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (the test command installs Debian's where it can)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright, or a skip that says why not."""
    reason = chromium_available()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make around it are ordinary synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
