"""Alert batches: accept quickly and durably, process in Celery, reconcile what a lost message left.

:func:`batch_receive` checks only the envelope (size, content type, the JSON ``alerts`` list or
the Avro container's record count), stores the raw body and enqueues
:func:`batch_process` when the row commits. Processing parses every alert
(:func:`candidates.packets.parse_alert_batch`), stores the good ones
(:func:`candidates.services.ingest.alerts_ingest`) and records one error per bad alert in
the batch, then drops the raw body (each candidate keeps its own packet).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, cast

import fastavro
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from candidates.models import AlertBatch, BatchSource, BatchStatus
from candidates.packets import (
    AVRO_CONTENT_TYPES,
    JSON_CONTENT_TYPES,
    MAX_BATCH_BYTES,
    PacketError,
    parse_alert_batch,
)
from candidates.services.ingest import alerts_ingest

logger = logging.getLogger(__name__)

MAX_ALERTS_PER_BATCH = 100_000
STALE_PROCESSING = timedelta(minutes=10)
STALE_RECEIVED = timedelta(minutes=2)
_AVRO_HEADER = {
    "type": "record",
    "name": "org.apache.avro.file.Header",
    "fields": [
        {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
        {"name": "meta", "type": {"type": "map", "values": "bytes"}},
        {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
    ],
}


def media_type(content_type: str) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _read_long(data: bytes, position: int) -> tuple[int, int]:
    """One zig-zag varint of the Avro container framing."""
    shift = result = 0
    while True:
        if position >= len(data):
            raise PacketError("truncated Avro container (block header runs past the end)")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise PacketError("corrupt Avro container (varint too long)")


def envelope_count(*, body: bytes, content_type: str) -> int:
    """How many alerts the body holds, checking only its envelope; raises PacketError.

    JSON: a ``{"alerts": [...]}`` object with 1 to :data:`MAX_ALERTS_PER_BATCH` entries. Avro
    object container: a readable header naming an ``alert`` schema, and blocks whose framing
    and sync markers are intact (records are decoded later). Confluent-framed Avro cannot be
    counted without decoding, so it is parsed here in full.
    """
    if len(body) > MAX_BATCH_BYTES:
        raise PacketError(f"body is {len(body)} bytes; the limit is {MAX_BATCH_BYTES} bytes (64 MiB)")
    if not body:
        raise PacketError("body is empty")
    kind = media_type(content_type)
    if kind in JSON_CONTENT_TYPES:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PacketError(f"body is not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("alerts"), list):
            raise PacketError('body must be a JSON object {"alerts": [...]}')
        extra = set(document) - {"alerts"}
        if extra:
            raise PacketError(f"unknown top-level field(s): {', '.join(sorted(extra))}")
        count = len(document["alerts"])
    elif kind in AVRO_CONTENT_TYPES:
        if body[:4] == b"Obj\x01":
            count = _container_count(body)
        elif body[:1] == b"\x00":
            parsed = parse_alert_batch(body=body, content_type=content_type)
            count = len(parsed.alerts) + len(parsed.errors)
        else:
            raise PacketError(
                "body is neither an Avro object container file (magic 'Obj\\x01') nor a Confluent-framed "
                "Avro message (magic byte 0x00 and a 4-byte schema id)"
            )
    else:
        supported = ", ".join(sorted(JSON_CONTENT_TYPES | AVRO_CONTENT_TYPES))
        raise PacketError(f"unsupported content type {content_type!r}; expected one of: {supported}")
    if count == 0:
        raise PacketError("the batch holds no alert")
    if count > MAX_ALERTS_PER_BATCH:
        raise PacketError(f"the batch holds {count} alerts; the limit is {MAX_ALERTS_PER_BATCH}")
    return count


def _container_count(body: bytes) -> int:
    stream = io.BytesIO(body)
    try:
        header = cast(dict[str, Any], fastavro.schemaless_reader(stream, _AVRO_HEADER, None))
    except Exception as exc:  # fastavro raises EOFError, ValueError, ... on garbage
        raise PacketError(f"cannot read the Avro container header: {exc or type(exc).__name__}") from None
    schema = header["meta"].get("avro.schema", b"")
    try:
        name = json.loads(schema).get("name", "") if schema else ""
    except (ValueError, AttributeError):
        raise PacketError("Avro container carries an invalid schema") from None
    if not str(name).endswith("alert"):
        raise PacketError(f"unsupported Avro schema {name!r}; expected lsst.v<major>_<minor>.alert or ztf.alert")
    sync = header["sync"]
    position, count = stream.tell(), 0
    while position < len(body):
        records, position = _read_long(body, position)
        size, position = _read_long(body, position)
        if records < 0 or size < 0 or position + size + 16 > len(body):
            raise PacketError(f"truncated Avro container (block at byte {position} runs past the end)")
        position += size
        if body[position : position + 16] != sync:
            raise PacketError(f"corrupt Avro container (bad sync marker at byte {position})")
        position += 16
        count += records
    return count


def batch_receive(
    *,
    body: bytes,
    content_type: str,
    sender: Any = None,
    broker: str = "",
    source: str = BatchSource.PUSH,
    now: datetime | None = None,
) -> AlertBatch:
    """Check the envelope, store the batch, and enqueue its processing on commit.

    Raises :class:`~candidates.packets.PacketError` (nothing stored) when the envelope is
    unusable. ``broker`` is the authenticated sender's broker name ('' lets each alert name
    its own, see :func:`~candidates.packets.parse_alert_batch`).
    """
    count = envelope_count(body=body, content_type=content_type)
    from candidates.tasks import batch_process_task

    with transaction.atomic():
        batch = AlertBatch.objects.create(
            source=source, broker=broker, sender=sender if getattr(sender, "pk", None) else None,
            content_type=media_type(content_type), body=bytes(body), n_received=count,
            received_at=now or timezone.now(),
        )  # fmt: skip
        batch_process_task.delay_on_commit(str(batch.pk))  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    return batch


def batch_process(*, batch_id: Any, now: datetime | None = None) -> AlertBatch | None:
    """Parse and store a received batch; idempotent (a done batch is left alone, and replayed
    alerts are duplicates). A batch another worker started less than 10 minutes ago is skipped;
    after that it is taken over (its worker is presumed dead)."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = AlertBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.status in (BatchStatus.DONE, BatchStatus.FAILED):
            return batch
        if batch.status == BatchStatus.PROCESSING and batch.started_at and batch.started_at > now - STALE_PROCESSING:
            return batch
        batch.status = BatchStatus.PROCESSING
        batch.started_at = now
        batch.attempts += 1
        batch.save(update_fields=["status", "started_at", "attempts"])
    try:
        parsed = parse_alert_batch(body=bytes(batch.body), content_type=batch.content_type, broker=batch.broker or None)
    except PacketError as exc:
        AlertBatch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.FAILED, failure=str(exc), finished_at=timezone.now(), body=b""
        )
        batch.refresh_from_db()
        return batch
    result = alerts_ingest(alerts=parsed.alerts, received_at=batch.received_at, batch_id=batch.pk)
    AlertBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.DONE,
        finished_at=timezone.now(),
        n_stored=result.stored,
        n_duplicate=result.duplicate,
        n_rejected=len(parsed.errors),
        n_new_targets=result.new_targets,
        n_matches=result.matches,
        errors=[asdict(error) for error in parsed.errors],
        body=b"",
    )
    batch.refresh_from_db()
    return batch


def batches_reconcile(*, now: datetime | None = None) -> list[str]:
    """Re-enqueue batches a lost message or a dead worker left behind; returns their ids."""
    from candidates.tasks import batch_process_task

    now = now or timezone.now()
    # A stream batch keeps no body: its messages are re-read from Kafka (they were not acknowledged).
    AlertBatch.objects.filter(
        source=BatchSource.STREAM, status=BatchStatus.PROCESSING, started_at__lt=now - STALE_PROCESSING
    ).update(status=BatchStatus.FAILED, finished_at=now,
             failure="interrupted; its messages were not acknowledged and are read again from the stream")
    ids = [
        str(pk)
        for pk in AlertBatch.objects.exclude(source=BatchSource.STREAM).filter(
            Q(status=BatchStatus.RECEIVED, received_at__lt=now - STALE_RECEIVED)
            | Q(status=BatchStatus.PROCESSING, started_at__lt=now - STALE_PROCESSING)
        ).values_list("pk", flat=True)
    ]
    for pk in ids:
        batch_process_task.delay(pk)
    return ids
