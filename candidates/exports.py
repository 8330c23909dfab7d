"""Streaming CSV and Parquet writers for the ledger and the training set: rows in, bytes out, in
pieces, so a million-row export never holds more than one row group in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

ROW_GROUP = 20_000
"""Rows per Parquet row group (and per CSV piece handed to the response)."""

# Arrow types of the columns that are not strings.
_INT = ("candidate_id", "target_id", "filters_passed", "regions_inside", "trigger_rule", "request_id",
        "visits_completed", "n_labels", "n_real", "n_bogus")
_FLOAT = ("ra", "dec", "mag", "mag_err", "top_score", "flux", "flux_err", "rise_rate", "galactic_lat")
_TIME = ("time", "ingested_at", "labelled_at")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class _Echo:
    """A write-only file for :mod:`csv` that hands back what it was given."""

    def write(self, value: str) -> str:
        return value


def csv_stream(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, piece: int = 1000) -> Iterator[bytes]:
    """CSV (header first; empty cells for missing values; times ISO 8601 UTC), ``piece`` rows per chunk."""
    writer = csv.writer(_Echo())
    yield writer.writerow(columns).encode()
    buffer: list[str] = []
    for row in rows:
        buffer.append(writer.writerow([_cell(v) for v in row]))
        if len(buffer) >= piece:
            yield "".join(buffer).encode()
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode()


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: bytes collected until the response takes them."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def arrow_schema(columns: Sequence[str]) -> Any:
    """The Arrow schema of an export's columns (ids int64, measures float64, times UTC microseconds)."""
    import pyarrow as pa

    def kind(name: str) -> Any:
        if name in _INT:
            return pa.int64()
        if name in _FLOAT:
            return pa.float64()
        if name in _TIME:
            return pa.timestamp("us", tz="UTC")
        return pa.string()

    return pa.schema([(name, kind(name)) for name in columns])


def parquet_stream(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, row_group: int = ROW_GROUP) -> Iterator[bytes]:
    """Parquet (zstd), one row group per ``row_group`` rows, each handed out as soon as it is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= row_group:
                writer.write_table(_table(batch, schema, pa), row_group_size=row_group)
                batch.clear()
                yield sink.take()
        if batch:
            writer.write_table(_table(batch, schema, pa), row_group_size=row_group)
    finally:
        writer.close()
    yield sink.take()


def _table(batch: list[Sequence[Any]], schema: Any, pa: Any) -> Any:
    arrays = [pa.array([row[i] for row in batch], type=f.type) for i, f in enumerate(schema)]
    return pa.Table.from_arrays(arrays, schema=schema)
