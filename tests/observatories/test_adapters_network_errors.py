"""The portal client against facilities that hang or refuse connections (no database, no simulator)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from observatories.adapters import PortalClient, PortalUnavailable


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung facility)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_facility_that_times_out_is_unavailable_within_the_time_budget(silent_server: str) -> None:
    client = PortalClient(base_url=silent_server, token="t", timeout_s=0.3, retries=1, backoff_s=0.0)
    started = time.monotonic()
    with pytest.raises(PortalUnavailable, match="ReadTimeout"):
        client.submit(payload={"requests": []}, idempotency_key="key-hung")
    with pytest.raises(PortalUnavailable):
        client.facility_state()
    assert time.monotonic() - started < 5.0


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PortalClient(base_url=f"http://127.0.0.1:{port}/sim/", timeout_s=1.0, retries=1, backoff_s=0.0)
    with pytest.raises(PortalUnavailable, match="ConnectionError"):
        client.status(remote_id="1")


def test_retries_back_off_exponentially() -> None:
    waits: list[float] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PortalClient(base_url=f"http://127.0.0.1:{port}/", timeout_s=1.0, retries=3, backoff_s=0.5, sleep=waits.append)
    with pytest.raises(PortalUnavailable, match="4 attempts"):
        client.telescope_states()
    assert waits == [0.5, 1.0, 2.0]


@pytest.fixture
def lco_like_portal() -> Iterator[tuple[str, dict]]:
    """A stand-in for the real LCO portal (the internet): serves a telescope_states body the test sets."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", body
    server.shutdown()
    server.server_close()
    thread.join()


def test_lco_style_telescope_keys_are_matched_by_site_and_class(lco_like_portal: tuple[str, dict]) -> None:
    url, body = lco_like_portal
    client = PortalClient(base_url=url, facility_code="lsc-1m0-a", site_code="lsc", telescope_class="1m0", retries=0)
    event = {"event_type": "NOT_OK_TO_OPEN", "event_reason": "Weather: humidity", "start": "2026-06-15T23:00:00Z", "end": "2026-06-16T00:00:00Z"}
    body.update({"lsc.doma.1m0a": [event], "lsc.domb.1m0a": [event], "lsc.aqwa.0m4a": [{**event, "event_type": "AVAILABLE"}]})
    state = client.facility_state()
    assert (state.state, state.reason) == ("weather", "Weather: humidity")
    assert state.observed_at is not None and state.observed_at.isoformat() == "2026-06-15T23:00:00+00:00"
    body["lsc.domb.1m0a"] = [{**event, "event_type": "AVAILABLE", "event_reason": "Available"}]
    assert client.facility_state().state == "available"
    body.clear()
    body["lsc.doma.1m0a"] = [{**event, "event_type": "SEQUENCER_DISABLED", "event_reason": "Sequencer disabled"}]
    assert (client.facility_state().state, client.facility_state().reason) == ("downtime", "Sequencer disabled")
    body.clear()
    assert client.facility_state().state == "unknown"


@pytest.mark.django_db
def test_toms_own_lco_module_can_join_the_network() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from observatories.adapters import portal_client_for
    from observatories.models import Facility

    facility = Facility.objects.select_related("site").get(code="lsc-1m0-a")
    facility.adapter, facility.api_url, facility.api_token, facility.simulated = (
        "tom_observations.facilities.lco.LCOFacility", "https://observe.lco.global/", "secret", False,
    )
    client = portal_client_for(facility)
    assert (client.base_url, client.token) == ("https://observe.lco.global/", "secret")
    facility.adapter = "tom_observations.facilities.gemini.GEMFacility"
    with pytest.raises(ImproperlyConfigured, match="does not speak the portal API"):
        portal_client_for(facility)
