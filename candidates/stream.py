"""Stream in: alerts from Kafka / Hopskotch, batched and stored as they come.

:class:`AlertStreamConsumer` is the consumer without the network: give it messages (the raw
Kafka payloads: Confluent-framed Rubin Avro, ZTF Avro container files, or Baton's generic
JSON) and it parses them, stores each full batch (``batch_size`` messages or ``max_wait``
seconds, whichever comes first) with :func:`~candidates.services.alerts_ingest` in one go,
and records the batch (counts and per-alert errors) as an ``AlertBatch`` with source
``stream``. It acknowledges messages only after their batch has committed, so a crash
re-reads them and the unique keys make the replay harmless.

:func:`hop_messages` reads a Hopskotch / Kafka topic with ``hop-client``; the management
command ``candidates_stream`` joins the two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from candidates.models import AlertBatch, BatchSource, BatchStatus
from candidates.packets import AlertError, AlertIn, PacketError, parse_alert_batch
from candidates.services import alerts_ingest

logger = logging.getLogger(__name__)


@dataclass
class StreamMessage:
    """One Kafka message: its payload and an opaque handle to acknowledge it with."""

    payload: bytes
    handle: Any = None


@dataclass
class StreamStats:
    messages: int = 0
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    batches: int = 0
    batch_ids: list[str] = field(default_factory=list)


def content_type_of(payload: bytes) -> str:
    """The content type a payload's first bytes announce (Avro container or frame, else JSON)."""
    if payload[:4] == b"Obj\x01" or payload[:1] == b"\x00":
        return "application/avro"
    return "application/json"


class AlertStreamConsumer:
    """Batch messages into ingest; see the module doc. ``clock`` is injectable for tests."""

    def __init__(
        self,
        *,
        broker: str = "",
        batch_size: int = 1000,
        max_wait: float = 1.0,
        ack: Callable[[list[StreamMessage]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.broker = broker
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.ack = ack
        self.clock = clock
        self.now = now
        self.stats = StreamStats()
        self._pending: list[StreamMessage] = []
        self._first_at: float | None = None
        self._received_at: datetime | None = None

    def add(self, message: StreamMessage) -> None:
        """Take one message; flushes when the batch is full or has waited ``max_wait``."""
        if not self._pending:
            self._first_at = self.clock()
            self._received_at = self.now()
        self._pending.append(message)
        self.stats.messages += 1
        if len(self._pending) >= self.batch_size:
            self.flush()
        else:
            self.tick()

    def tick(self) -> None:
        """Flush a batch that has waited ``max_wait`` (call when the stream is idle)."""
        if self._pending and self._first_at is not None and self.clock() - self._first_at >= self.max_wait:
            self.flush()

    def consume(self, messages: Iterable[StreamMessage | None]) -> StreamStats:
        """Feed every message (a None is an idle poll: only the timer runs), then flush the rest."""
        for message in messages:
            if message is None:
                self.tick()
            else:
                self.add(message)
        self.flush()
        return self.stats

    def _parse(self, messages: list[StreamMessage]) -> tuple[list[AlertIn], list[AlertError]]:
        alerts: list[AlertIn] = []
        errors: list[AlertError] = []
        broker = self.broker or None
        # Confluent frames of one schema concatenate into one body (one decoder set-up);
        # containers and JSON documents are parsed one by one.
        frames = [m.payload for m in messages if m.payload[:1] == b"\x00"]
        others = [m.payload for m in messages if m.payload[:1] != b"\x00"]
        bodies: list[tuple[bytes, str]] = []
        if frames:
            schema_ids = {frame[1:5] for frame in frames}
            if len(schema_ids) == 1:
                bodies.append((b"".join(frames), "application/avro"))
            else:
                bodies.extend((frame, "application/avro") for frame in frames)
        bodies.extend((payload, content_type_of(payload)) for payload in others)
        offset = 0
        while bodies:
            body, content_type = bodies.pop(0)
            try:
                parsed = parse_alert_batch(body=body, content_type=content_type, broker=broker)
            except PacketError as exc:
                if len(frames) > 1 and body == b"".join(frames):
                    # One bad frame spoils the concatenation: parse the frames one by one instead.
                    bodies[:0] = [(frame, "application/avro") for frame in frames]
                    frames = []
                    continue
                errors.append(AlertError(index=offset, alert_id=None, field=None, message=f"message: {exc}"))
                offset += 1
                continue
            alerts.extend(parsed.alerts)
            errors.extend(
                AlertError(index=offset + e.index, alert_id=e.alert_id, field=e.field, message=e.message)
                for e in parsed.errors
            )
            offset += len(parsed.alerts) + len(parsed.errors)
        return alerts, errors

    def flush(self) -> AlertBatch | None:
        """Parse, store and record the pending messages, then acknowledge them."""
        if not self._pending:
            return None
        messages, self._pending = self._pending, []
        received_at = self._received_at or self.now()
        alerts, errors = self._parse(messages)
        batch = AlertBatch.objects.create(
            source=BatchSource.STREAM, broker=self.broker, content_type="application/x-kafka-messages",
            status=BatchStatus.PROCESSING, received_at=received_at, started_at=self.now(), attempts=1,
            n_received=len(alerts) + len(errors),
        )  # fmt: skip
        result = alerts_ingest(alerts=alerts, received_at=received_at, batch_id=batch.pk)
        AlertBatch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.DONE, finished_at=self.now(), n_stored=result.stored, n_duplicate=result.duplicate,
            n_rejected=len(errors), n_new_targets=result.new_targets, n_matches=result.matches,
            errors=[asdict(e) for e in errors],
        )  # fmt: skip
        if self.ack is not None:
            self.ack(messages)
        self.stats.stored += result.stored
        self.stats.duplicate += result.duplicate
        self.stats.rejected += len(errors)
        self.stats.batches += 1
        self.stats.batch_ids.append(str(batch.pk))
        return batch


def hop_messages(
    url: str, *, auth: Any = True, group_id: str | None = None, idle: float = 1.0
) -> tuple[Iterator[StreamMessage | None], Callable[[list[StreamMessage]], None]]:
    """Read a Hopskotch/Kafka topic (``kafka://host:port/topic``) with hop-client, raw.

    Returns the messages and the acknowledger that commits their offsets (after the batch
    commits). Each pass reads to the end of the stream, then yields None (the consumer's
    batch timer flushes a partial batch) and waits ``idle`` seconds before the next pass.
    """
    from hop import Stream  # hop-client: imported here so the rest works without it

    stream = Stream(auth=auth, until_eos=True)
    group = group_id or "baton-candidates"
    open_consumers: list[Any] = []

    def messages() -> Iterator[StreamMessage | None]:
        while True:
            consumer = stream.open(url, "r", group_id=group, ignoretest=False)
            open_consumers[:] = [consumer]
            with consumer:
                for payload, metadata in consumer.read_raw(metadata=True, autocommit=False):
                    yield StreamMessage(payload=bytes(payload), handle=metadata)
                yield None
            time.sleep(idle)

    def ack(done: list[StreamMessage]) -> None:
        consumer = open_consumers[0] if open_consumers else None
        if consumer is not None:
            for message in done:
                consumer.mark_done(message.handle)

    return messages(), ack
