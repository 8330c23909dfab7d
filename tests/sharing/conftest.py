"""Fixtures of the sharing tests: a real stock TOM Toolkit server (``stock_tom.py``), a second Celery
worker, a local HTTP server posing as a partner TOM and as Hermes (its submit_message API), two teams
with admins, members and an outsider, and data."""

from __future__ import annotations

import json
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from policies.services import policy_update, team_create, team_member_set
from tests.sharing.hermes_standin import NO_CREDENTIAL, hermes_errors
from tests.sharing.stock_tom import StockTom, StockTomUnavailable
from tests.support import free_port, wait_for  # noqa: F401 - wait_for is imported from here by the tests

TOM_TOKEN = "partner-tom-token"
HERMES_TOKEN = "hermes-api-key"
PASSWORD = "a long test password 42"


@pytest.fixture(scope="session")
def stock_tom_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[StockTom]:
    """A stock TOM Toolkit server for the session, on its own database beside the test database."""
    from django.db import connection

    with django_db_blocker.unblock():
        cfg = connection.settings_dict
    tom = StockTom(db={"NAME": f"{cfg['NAME']}_stock_tom", "HOST": cfg.get("HOST"), "PORT": cfg.get("PORT"),
                       "USER": cfg.get("USER"), "PASSWORD": cfg.get("PASSWORD")})
    try:
        tom.build()
        tom.start()
    except StockTomUnavailable as exc:
        tom.close()
        pytest.skip(f"a stock TOM Toolkit server could not be started here: {exc}")
    yield tom
    tom.close()


@pytest.fixture
def stock_tom(stock_tom_server: StockTom) -> StockTom:
    """The stock TOM, up and without targets or data."""
    stock_tom_server.clear()
    return stock_tom_server


@pytest.fixture(scope="module")
def second_worker_process(celery_worker_process: Any, django_db_blocker: Any) -> Iterator[Any]:
    """A second Celery worker on the same queue, so two deliveries run at once (as in production). Stopped at the
    end of the module that asked for it: left running, it would take later tests' tasks on the shared queue."""
    from tests.conftest import WorkerProcess

    with django_db_blocker.unblock():
        worker = WorkerProcess()
        worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def two_workers(request: pytest.FixtureRequest, celery_worker_process: Any, second_worker_process: Any) -> Iterator[None]:
    """Both workers; after the test (before the database flush) the second is idle too, as the first is made."""
    request.getfixturevalue("_django_db_helper")
    yield
    import time

    from tomsite.celery import app

    app.control.purge()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        inspect = app.control.inspect(destination=[second_worker_process.node], timeout=1.0)
        busy = [t for tasks in (inspect.active() or {}).values() for t in tasks]
        busy += [t for tasks in (inspect.reserved() or {}).values() for t in tasks]
        if not busy:
            return
        time.sleep(0.2)


@dataclass
class PartnerSink:
    """A partner TOM under ``/tom/`` and Hermes under ``/hermes/`` on 127.0.0.1:<port>.

    The TOM keeps targets and reduced data as TOM's API does (``api/targets/?name_fuzzy=`` one name,
    ``POST api/targets/`` with unique names, ``GET/POST api/reduceddatums/``; the real thing is
    ``stock_tom.py``, this one can lose answers); Hermes validates what is posted to
    ``api/v0/submit_message/`` as Hermes does (``hermes_standin.py``), keeps the messages it accepts
    and the refused ones with their errors, and with ``hermes_no_credential`` answers as Hermes does
    for an account without a SCiMMA credential. ``lose_answers`` > 0: that many data POSTs are stored but
    answered 502, as when the answer is lost on the way back.
    """

    port: int = field(default_factory=free_port)
    targets: list[dict[str, Any]] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    hermes_refused: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    hermes_no_credential: bool = False
    lose_answers: int = 0
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tom_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tom/"

    @property
    def hermes_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hermes/"

    def clear(self) -> None:
        with self.lock:
            self.targets.clear()
            self.data.clear()
            self.messages.clear()
            self.refused.clear()
            self.hermes_refused.clear()
            self.hermes_no_credential = False
            self.lose_answers = 0

    def start(self) -> None:
        if self.server is not None:
            return
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def authorised(self, token: str) -> bool:
                if self.headers.get("Authorization") == f"Token {token}":
                    return True
                with sink.lock:
                    sink.refused.append(self.path)
                self.answer(401, {"detail": "Invalid token."})
                return False

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if not self.authorised(TOM_TOKEN):
                    return
                with sink.lock:
                    if url.path == "/tom/api/targets/":
                        # As TOM 3.1: one name (a comma-separated list matches nothing), or an alias.
                        name = query.get("name_fuzzy", "")
                        self.answer(200, {"results": [t for t in sink.targets if name == t["name"]
                                                      or name in [a["name"] for a in t.get("aliases", [])]]})
                    elif url.path == "/tom/api/reduceddatums/":
                        rows = [d for d in sink.data if str(d["target"]) == query.get("target__id")
                                and d["source_name"] == query.get("source_name")]
                        self.answer(200, {"count": len(rows), "results": rows})
                    else:
                        self.answer(404, {"detail": "Not found."})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                path = urllib.parse.urlsplit(self.path).path
                if path.startswith("/hermes/"):
                    if not self.authorised(HERMES_TOKEN):
                        return
                    # As Hermes answers (hermes_standin.py): 400 with the errors; 200 with an error when the
                    # account has no stream credential (nothing published); else 200 with the message and uuid.
                    errors = hermes_errors(body)
                    with sink.lock:
                        if errors:
                            sink.hermes_refused.append((body, errors))
                            self.answer(400, errors)
                        elif sink.hermes_no_credential:
                            self.answer(200, {"error": NO_CREDENTIAL})
                        else:
                            sink.messages.append(body)
                            self.answer(200, {**body, "uuid": str(uuid.uuid4())})
                    return
                if not self.authorised(TOM_TOKEN):
                    return
                with sink.lock:
                    if path == "/tom/api/targets/":
                        if any(t["name"] == body.get("name") for t in sink.targets):  # unique, as TOM's are
                            self.answer(400, {"name": ["target with this Name already exists."]})
                            return
                        target = {**body, "id": len(sink.targets) + 1}
                        sink.targets.append(target)
                        self.answer(201, target)
                    elif path == "/tom/api/reduceddatums/":
                        sink.data.append(body)
                        if sink.lose_answers > 0:
                            sink.lose_answers -= 1
                            self.answer(502, {"detail": "Bad gateway"})
                        else:
                            self.answer(201, body)
                    else:
                        self.answer(404, {"detail": "Not found."})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture(scope="session")
def partner_sink() -> Iterator[PartnerSink]:
    sink = PartnerSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def partner(partner_sink: PartnerSink) -> Iterator[PartnerSink]:
    """The partner TOM and Hermes, empty and up."""
    partner_sink.start()
    partner_sink.clear()
    yield partner_sink
    partner_sink.start()  # a test that stopped it leaves it up for the next


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.BATON_POLICIES = {**settings.BATON_POLICIES, "NOTIFY": ""}


def sharing_document(*, days: float, destinations: list[str], release_to: str = "network") -> dict[str, Any]:
    rule = {"partners": [], "proprietary_days": days, "release_to": release_to}
    if destinations:
        rule["destinations"] = destinations
    return {"schema": 1, "sharing": {"photometry": rule},
            "publication": {"guidelines": "", "claims_need_agreement": True},
            "time": {"overrun_action": "refuse", "unallocated_action": "allow", "allocations": []}, "notifications": []}


@dataclass
class World:
    team: Any  # policies.Team, its admin alice
    alice: Any
    bob: Any  # a member of the team
    olga: Any  # in no team
    target: Target

    def share(self, *, days: float, destinations: list[str], release_to: str = "network") -> None:
        policy_update(team=self.team, by=self.alice, document=sharing_document(days=days, destinations=destinations,
                                                                               release_to=release_to))

    def point(self, *, age_days: float, mag: float, band: str = "r") -> PhotometryReducedDatum:
        return PhotometryReducedDatum.objects.create(
            target=self.target, timestamp=timezone.now() - timedelta(days=age_days), bandpass=band, brightness=mag,
            brightness_error=0.02, unit="AB", telescope="1m0-05", instrument="sinistro")


@pytest.fixture
def world(django_user_model: Any) -> World:
    def make(name: str) -> Any:
        return django_user_model.objects.create_user(username=name, password=PASSWORD, email=f"{name}@example.org")

    alice, bob, olga = make("alice_s"), make("bob_s"), make("olga_s")
    team = team_create(name="Bulge team", slug="bulge", admins=[alice])
    team_member_set(team=team, user=bob, role="member", by=alice)
    target = Target.objects.create(name="OGLE-2016-BLG-1195", type=Target.SIDEREAL, ra=268.56, dec=-29.95, epoch=2000.0)
    return World(team=team, alice=alice, bob=bob, olga=olga, target=target)


@pytest.fixture
def destinations(world: World, partner: PartnerSink) -> dict[str, Any]:
    """The team's partner TOM and Hermes destinations, pointing at the local sink."""
    from sharing.services import destination_create

    return {
        "partner-tom": destination_create(team=world.team, by=world.alice, data={
            "name": "partner-tom", "kind": "tom", "base_url": partner.tom_url, "token": TOM_TOKEN}),
        "hermes": destination_create(team=world.team, by=world.alice, data={
            "name": "hermes", "kind": "hermes", "base_url": partner.hermes_url, "token": HERMES_TOKEN,
            "topic": "hermes.test", "authors": "A. Lice, B. Ob"}),
    }


@pytest.fixture
def api_client_for() -> Callable[[Any], Any]:
    from rest_framework.test import APIClient

    def make(user: Any) -> Any:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
