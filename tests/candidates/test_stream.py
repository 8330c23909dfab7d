"""The stream consumer on recorded Kafka messages: Confluent-framed Rubin alerts, ZTF containers,
JSON, and a corrupt message; batching by size and by time (a moved clock); acknowledgement
after commit; the hop-client adapter and the management command on a recorded stream."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest
from django.core.management import call_command

from candidates.models import AlertBatch, BatchSource, Candidate
from candidates.stream import AlertStreamConsumer, StreamMessage

from .conftest import generic_alert, json_body, rubin_record, ztf_packet, ztf_record

pytestmark = pytest.mark.django_db


def rubin_frames(n: int, start: int = 1000) -> list[bytes]:
    """Rubin alerts as Rubin's Kafka carries them: magic 0, schema id 1101, schemaless Avro."""
    schema, record = rubin_record(11, 1)
    parsed = fastavro.parse_schema(schema)
    frames = []
    for i in range(n):
        copy = dict(record)
        copy["diaSource"] = dict(record["diaSource"], diaSourceId=start + i, diaObjectId=start + i,
                                 ra=10.0 + i * 0.01)
        copy["prvDiaSources"] = []
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, copy)
        frames.append(b"\x00" + (1101).to_bytes(4, "big") + out.getvalue())
    return frames


def recorded_messages() -> list[StreamMessage]:
    payloads = [
        *rubin_frames(3),
        ztf_packet(),
        json_body(generic_alert(alert_id="j1", broker="fink")),
        b"\x00\x00\x00\x04\x4dcorrupt",  # schema id 1101, but a body that is not an alert
    ]
    return [StreamMessage(payload=p, handle=i) for i, p in enumerate(payloads)]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_recorded_messages_are_stored_and_acknowledged_after_commit() -> None:
    acked: list[list[Any]] = []

    def ack(messages: list[StreamMessage]) -> None:
        # Acknowledged only once the batch is in the database.
        assert Candidate.objects.count() == 5
        acked.append([m.handle for m in messages])

    consumer = AlertStreamConsumer(batch_size=100, ack=ack)
    stats = consumer.consume(recorded_messages())
    assert (stats.messages, stats.stored, stats.rejected, stats.batches) == (6, 5, 1, 1)
    assert acked == [[0, 1, 2, 3, 4, 5]]
    assert sorted(Candidate.objects.values_list("broker", flat=True)) == ["fink", "rubin", "rubin", "rubin", "ztf"]
    batch = AlertBatch.objects.get()
    assert (batch.source, batch.status, batch.n_stored, batch.n_rejected) == (BatchSource.STREAM, "done", 5, 1)
    assert batch.errors[0]["message"].startswith("message: cannot decode Confluent-framed Avro message at byte 0")

    replay = AlertStreamConsumer(batch_size=100).consume(recorded_messages())  # offsets lost: re-read
    assert (replay.stored, replay.duplicate) == (0, 5) and Candidate.objects.count() == 5


def test_batches_flush_by_size_and_by_time() -> None:
    clock = Clock()
    consumer = AlertStreamConsumer(batch_size=2, max_wait=1.0, clock=clock)
    frames = [StreamMessage(payload=f) for f in rubin_frames(5)]
    consumer.add(frames[0])
    consumer.add(frames[1])  # full: flushed
    assert consumer.stats.batches == 1 and Candidate.objects.count() == 2
    consumer.add(frames[2])
    clock.t = 0.5
    consumer.tick()
    assert consumer.stats.batches == 1  # waited 0.5 s of 1 s
    clock.t = 1.0
    consumer.consume([None])  # an idle poll: the timer flushes the partial batch
    assert consumer.stats.batches == 2 and Candidate.objects.count() == 3


def test_hop_adapter_and_management_command_on_a_recorded_stream(monkeypatch: Any) -> None:
    import hop

    marked: list[Any] = []
    passes: list[int] = []

    class RecordedConsumer:
        def __enter__(self) -> RecordedConsumer:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

        def read_raw(self, metadata: bool, autocommit: bool) -> Iterator[tuple[bytes, Any]]:
            assert metadata and not autocommit  # offsets are committed by Baton, after the batch commits
            for message in recorded_messages():
                yield message.payload, f"offset-{message.handle}"

        def mark_done(self, metadata: Any) -> None:
            marked.append(metadata)

    class RecordedStream:
        def __init__(self, auth: Any = True, until_eos: bool = False) -> None:
            assert until_eos

        def open(self, url: str, mode: str, group_id: str | None = None, ignoretest: bool = True) -> Any:
            assert (url, mode, group_id) == ("kafka://localhost:9092/alerts", "r", "baton-candidates")
            passes.append(1)
            if len(passes) > 1:
                raise KeyboardInterrupt  # stop the command after one pass over the recording
            return RecordedConsumer()

    monkeypatch.setattr(hop, "Stream", RecordedStream)
    monkeypatch.setattr("candidates.stream.time.sleep", lambda seconds: None)
    out = io.StringIO()
    call_command("candidates_stream", "kafka://localhost:9092/alerts", "--batch-size", "4", "--no-auth", stdout=out)
    assert "6 messages, 5 stored, 0 duplicates, 1 rejected in 2 batches" in out.getvalue()
    assert marked == [f"offset-{i}" for i in range(6)]
    assert ztf_record()["objectId"] in set(Candidate.objects.values_list("object_id", flat=True))


def test_an_interrupted_stream_batch_is_closed_not_replayed() -> None:
    """Kafka keeps the messages of an interrupted stream batch; the reconciler only closes the record."""
    from datetime import UTC, datetime, timedelta

    from candidates.models import BatchStatus
    from candidates.services import batches_reconcile

    started = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    batch = AlertBatch.objects.create(source=BatchSource.STREAM, status=BatchStatus.PROCESSING, started_at=started,
                                      received_at=started, content_type="application/x-kafka-messages")
    assert batches_reconcile(now=started + timedelta(minutes=11)) == []
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and "read again from the stream" in batch.failure
