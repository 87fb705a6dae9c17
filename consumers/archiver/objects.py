"""Buffered rows of one Kafka partition (Arrow chunks) → zstd Parquet objects, one per Hive
partition (account, region, event-time hour), keyed by
:func:`pipeline.lake.layout.object_key`. Columnar throughout: the Hive partition of every row
is computed on whole columns, rows are grouped by an Arrow hash aggregation, and each group is
written with ``pyarrow.parquet``."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.lake.columns import LAKE_SCHEMA, to_table
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.layout import HOUR_MS, object_key

CHUNK_ROWS = 8192
"""Buffered rows are converted to Arrow in chunks of this many (~1 KB a row instead of the
~4.5 KB of a decoded dict), so ``max_records`` of buffer stays affordable."""


class RowBuffer:
    """Unflushed rows of one Kafka partition, in offset order, as Arrow chunks plus a short
    tail of datums not converted yet. ``offsets`` lists every buffered row's offset."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.offsets: list[int] = []
        self.size = 0  # consumed bytes of the buffered rows
        self._chunks: list[pa.Table] = []
        self._datums: list[Any] = []
        self._timestamps: list[int] = []
        self._converted = 0

    def append(self, datum: Any, offset: int, timestamp_ms: int, size: int) -> None:
        """Buffer one row (converting a full chunk). A datum of a registered ApiCallEvent
        writer always converts; anything else raises a pyarrow error (a bug, not data)."""
        self._datums.append(datum)
        self.offsets.append(offset)
        self._timestamps.append(timestamp_ms)
        self.size += size
        if len(self._datums) >= CHUNK_ROWS:
            self._convert()

    def _convert(self) -> None:
        if self._datums:
            self._chunks.append(to_table(self._datums, partition=self.partition,
                                         offsets=self.offsets[self._converted:],
                                         timestamps_ms=self._timestamps))
            self._converted += len(self._datums)
            self._datums, self._timestamps = [], []

    def _table(self) -> pa.Table:
        self._convert()
        return pa.concat_tables(self._chunks) if self._chunks else LAKE_SCHEMA.empty_table()

    def head(self, rows: int) -> pa.Table:
        """The first ``rows`` buffered rows (:data:`LAKE_SCHEMA`)."""
        return self._table().slice(0, rows)

    def drop_below(self, offset: int) -> None:
        """Forget the rows below ``offset``."""
        cut = bisect_left(self.offsets, offset)
        if cut:
            rest = self._table().slice(cut)
            self._chunks = [rest] if rest.num_rows else []
            self._converted -= cut
            self.size = self.size * (len(self.offsets) - cut) // len(self.offsets)
            del self.offsets[:cut]


@dataclass(frozen=True, slots=True)
class LakeObject:
    """One Parquet object ready to upload, with what its delivery notice reports."""

    key: str
    data: bytes
    records: int
    first_offset: int
    last_offset: int
    oldest_event_time_ms: int
    newest_event_time_ms: int


def effective_time_ms(table: pa.Table) -> pa.ChunkedArray:
    """Event time of every row: ``_event_time_ms``, else the ingest time (as
    :func:`pipeline.events.mapping.effective_time_ms`)."""
    return pc.coalesce(table["_event_time_ms"], pc.struct_field(table["_ingest"], "ingesttimems"))


def _non_empty(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Empty strings as null (a Hive partition value of '' is 'unknown', like a missing one)."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def hive_keys(table: pa.Table) -> pa.Table:
    """Per row: ``account`` (recipientAccountId, else userIdentity.accountId, as the event key
    does), ``region`` (awsRegion) and ``hour`` (floor of event time / 1 h)."""
    account = pc.coalesce(_non_empty(table["recipientaccountid"]),
                          _non_empty(pc.struct_field(table["useridentity"], "accountid")))
    hours = pc.floor(pc.divide(pc.cast(effective_time_ms(table), pa.float64()), float(HOUR_MS)))
    return pa.table({"account": account, "region": _non_empty(table["awsregion"]),
                     "hour": pc.cast(hours, pa.int64())})


def build_objects(table: pa.Table, *, topic: str, partition: int,
                  cfg: ArchiverConfig) -> list[LakeObject]:
    """Split ``table`` (rows of Kafka ``partition`` in offset order, :data:`LAKE_SCHEMA`) by
    Hive partition; each object holds its rows in offset order and is keyed by its first
    offset. Deterministic: the same rows and settings give the same keys and the same bytes
    (no writer, token or clock in the file), so any writer re-writing a range writes the same
    objects."""
    keys = hive_keys(table).append_column("row", pa.array(range(table.num_rows), pa.int64()))
    groups = keys.group_by(["account", "region", "hour"], use_threads=False).aggregate(
        [("row", "list")])
    eff = effective_time_ms(table)
    objects = []
    for account, region, hour, rows in zip(*(groups[c].to_pylist() for c in (
            "account", "region", "hour", "row_list")), strict=True):
        rows.sort()
        part = table.take(pa.array(rows, pa.int64())).combine_chunks()  # bytes: not chunking
        first, last = part["_offset"][0].as_py(), part["_offset"][-1].as_py()
        times = pc.min_max(eff.take(pa.array(rows, pa.int64()))).as_py()
        objects.append(LakeObject(
            key=object_key(account, region, hour * HOUR_MS, topic, partition, first),
            data=_parquet(part, cfg, {b"trailpipe.topic": topic.encode(),
                                      b"trailpipe.partition": str(partition).encode(),
                                      b"trailpipe.first_offset": str(first).encode(),
                                      b"trailpipe.last_offset": str(last).encode()}),
            records=part.num_rows, first_offset=first, last_offset=last,
            oldest_event_time_ms=times["min"], newest_event_time_ms=times["max"]))
    return objects


def _parquet(table: pa.Table, cfg: ArchiverConfig, meta: dict[bytes, bytes]) -> bytes:
    out = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(meta), out, compression="zstd",
                   compression_level=cfg.zstd_level, row_group_size=cfg.row_group_rows)
    return bytes(out.getvalue().to_pybytes())
