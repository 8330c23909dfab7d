"""Fixtures for drills: the simulated network over HTTP, a team with a filter and a trigger rule, a recorder
posing as a real (non-simulated) facility, and the notification servers (SMTP, Slack) shared with the
notifications tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from candidates.models import TriggerRule
from candidates.services import filter_create
from notifications.models import TeamSlack
from observatories.models import Facility, Instrument
from observatories.network import network_load
from policies.services import team_create
from tests.notifications.conftest import (  # noqa: F401  (fixtures used here)
    notification_servers_env,
    notifications_worker,
    slack_sink,
    smtp_sink,
)


class Recorder:
    """An HTTP server that records every call: it poses as a real observatory's portal."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                recorder.calls.append((self.command, self.path))
                body = json.dumps({"results": [], "count": 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def real_portal() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.stop()


@pytest.fixture
def network(live_server: Any, real_portal: Recorder) -> Any:
    """The default simulated network at the live server, plus one real facility whose portal is the recorder."""
    network_load()
    Facility.objects.update(api_url=f"{live_server.url}/sim/", archive_url=f"{live_server.url}/sim/archive/")
    model = Facility.objects.select_related("site").get(code="lsc-1m0-a")
    real = Facility.objects.create(
        code="real-1m0-a", name="A real 1-m telescope", site=model.site, telescope_class="1m0",
        aperture_m=model.aperture_m, adapter=model.adapter, api_url=real_portal.url, api_token="secret",
        simulated=False, enabled=True,
    )
    for instrument in Instrument.objects.filter(facility=model):
        Instrument.objects.create(facility=real, code=f"real-{instrument.code}"[:64], kind=instrument.kind,
                                  filters=instrument.filters, readout_s=instrument.readout_s,
                                  limiting_mag_60s=instrument.limiting_mag_60s, pixel_scale=instrument.pixel_scale)
    return live_server


@pytest.fixture
def drill_team(user: Any, slack_sink: Any) -> Any:  # noqa: F811 - the imported fixture
    """A team whose admin is ``user``: a bright-transient filter, a trigger rule on it, a Slack webhook."""
    user.email = "pi@example.org"
    user.save(update_fields=["email"])
    rules = [{"event": event, "roles": ["admin"], "channels": ["email", "slack", "inbox"]}
             for event in ("trigger.fired", "request.dispatched", "request.completed")]
    group = team_create(name="Drill Team", admins=[user], document={"notifications": rules}).group
    bright = filter_create(name="bright", team=group, predicates=[{"field": "mag", "op": "<=", "value": 20.0}])
    TriggerRule.objects.create(team=group, name="follow bright", filter=bright,
                               request_defaults={"window_hours": 24, "success_probability": 0.99})
    TeamSlack.objects.create(team=group, webhook_url=slack_sink.webhook("drill-team"))
    return group


# A fast transient opposite the Sun on 2026-12-15 (up all night from every site), a site clouded out,
# a telescope down, and Slack failing for the first three hours.
SCENARIO = {
    "duration_hours": 18, "step_minutes": 30, "sim_start": "2026-12-15T00:00:00Z",
    "events": [{"kind": "fast_transient", "name": "FT-1", "ra": 83.0, "dec": -25.0, "start_hours": 0.5,
                "peak_mag": 17.0, "rise_hours": 3, "cadence_hours": 1}],
    "faults": [{"kind": "clouds", "site": "cpt", "at_hours": 0, "hours": 12},
               {"kind": "downtime", "facility": "coj-1m0-a", "at_hours": 0, "hours": 18},
               {"kind": "slack_down", "at_hours": 0, "hours": 3}],
}


@pytest.fixture(autouse=True)
def no_drill_schema_left() -> Iterator[None]:
    """Every drill schema a test made is dropped after it (the test database outlives its tests' rows)."""
    yield
    from django.db import connection

    from drills.schema import schema_drop

    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname ~ '^drill_[0-9]+$'")
        for (schema,) in cursor.fetchall():
            schema_drop(schema=schema)
