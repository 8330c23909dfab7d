"""Polling a broker: TOM's ALeRCE broker class as a saved query on a schedule, against a local
HTTP server that answers as ALeRCE's API does (the edge of the world, stubbed over real HTTP)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from tom_alerts.models import BrokerQuery

from candidates.models import AlertBatch, BatchSource, BrokerPoll, Candidate, LightCurvePoint
from candidates.polling import broker_poll_run, broker_polls_due
from candidates.services import batch_process

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)

OBJECT = {
    "oid": "ZTF21aaqjmps", "ndethist": 3, "ndet": 3, "firstmjd": 59290.31, "lastmjd": 59296.27,
    "meanra": 180.81471, "meandec": 12.71318, "class": "SN", "classifier": "stamp_classifier",
    "probability": 0.734, "step_id_corr": "23.0.1", "stellar": False, "corrected": False,
}  # fmt: skip
LIGHTCURVE = {
    "detections": [
        {"candid": "1536240050015015001", "mjd": 59290.31, "fid": 1, "magpsf": 19.41, "sigmapsf": 0.11,
         "ra": 180.81469, "dec": 12.71320, "isdiffpos": 1},
        {"candid": "1539270280015015002", "mjd": 59293.33, "fid": 2, "magpsf": 18.97, "sigmapsf": 0.08,
         "ra": 180.81472, "dec": 12.71317, "isdiffpos": 1},
        {"candid": "1542270280015015003", "mjd": 59296.27, "fid": 2, "magpsf": 18.52, "sigmapsf": 0.07,
         "ra": 180.81473, "dec": 12.71318, "isdiffpos": 1},
    ],
    "non_detections": [{"mjd": 59287.30, "fid": 1, "diffmaglim": 20.4}],
}  # fmt: skip


class AlerceStub(BaseHTTPRequestHandler):
    requests_seen: list[str] = []
    fail = False

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.requests_seen.append(self.path)
        if self.fail:
            self.send_error(503, "maintenance")
            return
        path = urlparse(self.path).path
        if path == "/ztf/v1/objects/":
            body: Any = {"items": [OBJECT]}
        elif path == f"/ztf/v1/objects/{OBJECT['oid']}/lightcurve":
            body = LIGHTCURVE
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def alerce(monkeypatch: Any) -> Iterator[type[AlerceStub]]:
    AlerceStub.requests_seen = []
    AlerceStub.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlerceStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr("tom_alerts.brokers.alerce.ALERCE_SEARCH_URL", f"http://127.0.0.1:{server.server_port}/ztf/v1")
    yield AlerceStub
    server.shutdown()
    server.server_close()


@pytest.fixture
def poll() -> BrokerPoll:
    query = BrokerQuery.objects.create(name="young SNe", broker="ALeRCE", parameters={
        "query_name": "young SNe", "broker": "ALeRCE", "stamp_classifier": "SN", "lc_classifier": None,
        "ra": None, "dec": None, "radius": None, "max_pages": 1, "ndet": 3,
    })  # fmt: skip
    return BrokerPoll.objects.create(query=query, every=timedelta(minutes=10))


def test_a_saved_alerce_query_polls_into_candidates(alerce: type[AlerceStub], poll: BrokerPoll) -> None:
    assert broker_polls_due(now=NOW) == [poll.pk]
    batch = broker_poll_run(poll_id=poll.pk, now=NOW)
    assert batch is not None and batch.source == BatchSource.POLL and batch.broker == "ALeRCE"
    query = parse_qs(urlparse(alerce.requests_seen[0]).query)
    assert (query["classifier"], query["class"], query["ndet"]) == (["stamp_classifier"], ["SN"], ["3"])
    batch_process(batch_id=batch.pk)

    candidate = Candidate.objects.get()
    assert (candidate.broker, candidate.alert_id, candidate.object_id) == ("ALeRCE", "1542270280015015003",
                                                                         "ZTF21aaqjmps")
    assert (candidate.target.name, candidate.band, candidate.mag) == ("ZTF21aaqjmps", "r", 18.52)
    assert candidate.classifications == [
        {"classifier": "alerce-stamp_classifier", "version": "23.0.1", "class": "SN", "score": 0.734}
    ]
    assert candidate.rise_rate == pytest.approx((18.97 - 18.52) / (59296.27 - 59293.33))
    assert LightCurvePoint.objects.filter(target=candidate.target).count() == 3

    poll.refresh_from_db()
    assert (poll.last_run_at, poll.last_count, poll.last_error) == (NOW, 1, "")
    assert broker_polls_due(now=NOW + timedelta(minutes=5)) == []
    assert broker_polls_due(now=NOW + timedelta(minutes=10)) == [poll.pk]

    # The next poll returns the same object: nothing new is stored.
    again = broker_poll_run(poll_id=poll.pk, now=NOW + timedelta(minutes=10))
    assert again is not None
    done = batch_process(batch_id=again.pk)
    assert done is not None and done.n_duplicate == 1
    assert Candidate.objects.count() == 1


def test_a_broker_outage_is_recorded_on_the_poll(alerce: type[AlerceStub], poll: BrokerPoll) -> None:
    alerce.fail = True
    assert broker_poll_run(poll_id=poll.pk, now=NOW) is None
    poll.refresh_from_db()
    assert poll.last_error.startswith("HTTPError: 503 Server Error")
    assert poll.last_run_at == NOW and AlertBatch.objects.count() == 0


def test_a_broker_without_a_converter_is_reported(poll: BrokerPoll) -> None:
    poll.query.broker = "Fink"
    poll.query.save()
    assert broker_poll_run(poll_id=poll.pk, now=NOW) is None
    poll.refresh_from_db()
    assert poll.last_error == "ValueError: no converter for broker 'Fink'; known: ALeRCE"
