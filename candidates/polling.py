"""Poll brokers: TOM saved broker queries (``tom_alerts.BrokerQuery``) run on a beat schedule.

A :class:`~candidates.models.BrokerPoll` names a saved query and how often to run it. A run
calls the TOM broker class's ``fetch_alerts`` (ALeRCE as TOM ships it; any broker class in
``TOM_ALERT_CLASSES`` with a converter here), turns each result into Baton's generic JSON
alert (with its light curve as history and the broker's classification with provenance), and
stores them as one batch through :func:`~candidates.services.batch_receive`, so polled
alerts go through the same validation, ingest, filters and triggers as pushed ones.

TOM's broker classes call ``requests`` without a timeout; a run gives every call a default
timeout (:data:`HTTP_TIMEOUT`) so a hung broker cannot hang a worker.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests
from django.db.models import F, Q
from django.utils import timezone
from tom_alerts.alerts import get_service_class

from candidates.models import AlertBatch, BatchSource, BrokerPoll
from candidates.packets import PacketError
from candidates.services import batch_receive

logger = logging.getLogger(__name__)

HTTP_TIMEOUT = 30.0
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}

AlertDict = dict[str, Any]


def _alerce(broker: Any, item: dict[str, Any]) -> list[AlertDict]:
    """An ALeRCE object: its light curve's newest detection is the alert, the rest its history."""
    oid = str(item["oid"])
    curve = broker.fetch_lightcurve(oid)
    detections = sorted(
        (d for d in curve.get("detections", []) if d.get("magpsf") is not None and d.get("candid") is not None),
        key=lambda d: d["mjd"],
    )
    if not detections:
        return []
    last = detections[-1]

    def band(d: dict[str, Any]) -> str:
        fid = d.get("fid")
        return ZTF_BANDS.get(fid, str(fid)) if isinstance(fid, int) else str(fid)

    def point(d: dict[str, Any]) -> AlertDict:
        return {"source_id": str(d["candid"]), "mjd": d["mjd"], "band": band(d),
                "mag": d["magpsf"], "mag_err": d.get("sigmapsf") or 0.0}

    alert: AlertDict = {
        "alert_id": str(last["candid"]),
        "object_id": oid,
        "ra": last.get("ra", item.get("meanra")),
        "dec": last.get("dec", item.get("meandec")),
        "mjd": last["mjd"],
        "band": band(last),
        "mag": last["magpsf"],
        "mag_err": last.get("sigmapsf") or 0.0,
        "history": [point(d) for d in detections[:-1]],
        "extra": {"alerce_object": item},
    }
    if item.get("class") and item.get("probability") is not None:
        alert["classifications"] = [{
            "classifier": f"alerce-{item.get('classifier') or 'classifier'}"[:64],
            "version": str(item.get("step_id_corr") or "unknown")[:64],
            "class": str(item["class"])[:64],
            "score": float(item["probability"]),
        }]
    return [alert]


CONVERTERS: dict[str, Callable[[Any, dict[str, Any]], list[AlertDict]]] = {"ALeRCE": _alerce}
"""TOM broker name -> converter of one ``fetch_alerts`` result into generic JSON alerts."""


@contextlib.contextmanager
def _default_timeout(seconds: float) -> Iterator[None]:
    """Give every ``requests`` call made inside a timeout unless it set its own."""
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", seconds)
        return original(self, method, url, *args, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign,assignment]  # a wrapper of the same call
    try:
        yield
    finally:
        requests.Session.request = original  # type: ignore[method-assign]


def broker_polls_due(*, now: datetime | None = None) -> list[int]:
    """Ids of enabled polls never run, or last run at least ``every`` ago."""
    now = now or timezone.now()
    return list(
        BrokerPoll.objects.filter(enabled=True)
        .filter(Q(last_run_at__isnull=True) | Q(last_run_at__lte=now - F("every")))
        .values_list("pk", flat=True)
    )


def broker_poll_run(*, poll_id: int, now: datetime | None = None) -> AlertBatch | None:
    """Run one poll: fetch, convert, store as a batch (processed by Celery). Returns the batch,
    or None when nothing came back; broker errors are recorded on the poll, not raised."""
    now = now or timezone.now()
    poll = BrokerPoll.objects.select_related("query").get(pk=poll_id)
    query = poll.query
    alerts: list[AlertDict] = []
    error = ""
    try:
        broker = get_service_class(query.broker)()
        converter = CONVERTERS.get(query.broker)
        if converter is None:
            raise ValueError(f"no converter for broker {query.broker!r}; known: {', '.join(sorted(CONVERTERS))}")
        with _default_timeout(HTTP_TIMEOUT):
            results, feedback = broker.fetch_alerts(copy.deepcopy(query.parameters))
            for item in results:
                alerts.extend(converter(broker, item))
        error = str(feedback or "")
    except (requests.RequestException, ValueError, KeyError, ImportError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.warning("broker poll %s (%s) failed: %s", poll.pk, query.broker, error)
    batch = None
    if alerts:
        body = json.dumps({"alerts": alerts}, allow_nan=False).encode()
        try:
            batch = batch_receive(body=body, content_type="application/json", broker=query.broker,
                                  source=BatchSource.POLL, now=now)
        except PacketError as exc:
            error = f"{error}; {exc}" if error else str(exc)
    BrokerPoll.objects.filter(pk=poll.pk).update(last_run_at=now, last_count=len(alerts), last_error=error[:2000])
    type(query).objects.filter(pk=query.pk).update(last_run=now)
    return batch
