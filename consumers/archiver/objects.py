"""Buffered rows of one Kafka partition (Arrow tables of :data:`LAKE_SCHEMA`) → zstd Parquet
objects, one per Hive partition (account, region, event-time hour), keyed by
:func:`pipeline.lake.layout.object_key`. Columnar throughout: no Python per row, only per
buffered table and per object.

Each object's Parquet layout (row order, encodings) is :mod:`consumers.archiver.parquet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from consumers.archiver.parquet import LAYOUT, Layout, parquet_bytes
from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.layout import HOUR_MS, object_key


class RowBuffer:
    """Unflushed rows of one Kafka partition, in offset order, as Arrow tables
    (:data:`LAKE_SCHEMA`). Python work is per appended table, never per row; ``size`` is the
    consumed (wire) bytes of the buffered rows (pro rata once part of a table is dropped)."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._tables: list[pa.Table] = []  # each non-empty, offsets ascending
        self._firsts: list[int] = []
        self._lasts: list[int] = []
        self._sizes: list[int] = []

    @property
    def size(self) -> int:
        return sum(self._sizes)

    def append_table(self, table: pa.Table, size_bytes: int) -> None:
        """Buffer ``table``: rows of this Kafka partition, offsets strictly ascending and above
        every buffered one, ``size_bytes`` consumed for them. ValueError otherwise (a caller
        bug: nothing is buffered then)."""
        if not table.schema.equals(LAKE_SCHEMA):
            raise ValueError("a RowBuffer holds LAKE_SCHEMA tables")
        if table.num_rows == 0:
            return
        offsets = table["_offset"]
        first, last = offsets[0].as_py(), offsets[-1].as_py()
        if self._lasts and first <= self._lasts[-1]:
            raise ValueError(f"offset {first} is not above the buffered {self._lasts[-1]}")
        if table.num_rows > 1 and not pc.all(pc.greater(offsets.slice(1),
                                                         offsets.slice(0, len(offsets) - 1))
                                              ).as_py():
            raise ValueError("offsets of an appended table must be strictly ascending")
        self._tables.append(table)
        self._firsts.append(first)
        self._lasts.append(last)
        self._sizes.append(size_bytes)

    def count(self) -> int:
        """How many rows are buffered."""
        return sum(t.num_rows for t in self._tables)

    def first_offset(self) -> int:
        """The lowest buffered offset; IndexError when empty."""
        return self._firsts[0]

    def last_offset(self) -> int:
        """The highest buffered offset; IndexError when empty."""
        return self._lasts[-1]

    def cut_index(self, offset: int) -> int:
        """How many buffered rows lie below ``offset`` (``bisect_left`` of the offsets)."""
        rows = 0
        for table, first, last in zip(self._tables, self._firsts, self._lasts, strict=True):
            if last < offset:
                rows += table.num_rows
                continue
            if first < offset:
                rows += pc.sum(pc.less(table["_offset"], offset)).as_py()
            break
        return rows

    def head(self, rows: int) -> pa.Table:
        """The first ``rows`` buffered rows (:data:`LAKE_SCHEMA`, zero-copy slices)."""
        parts, left = [], rows
        for table in self._tables:
            if left <= 0:
                break
            parts.append(table.slice(0, left))
            left -= table.num_rows
        return pa.concat_tables(parts) if parts else LAKE_SCHEMA.empty_table()

    def drop_below(self, offset: int) -> None:
        """Forget the rows below ``offset``."""
        while self._tables and self._lasts[0] < offset:
            for column in (self._tables, self._firsts, self._lasts, self._sizes):
                del column[0]
        if self._tables and self._firsts[0] < offset:
            table = self._tables[0]
            cut = pc.sum(pc.less(table["_offset"], offset)).as_py()
            rest = table.slice(cut)
            self._tables[0], self._firsts[0] = rest, rest["_offset"][0].as_py()
            self._sizes[0] = self._sizes[0] * rest.num_rows // table.num_rows


MAX_RUNS = 256
"""Up to this many runs of one partition value a batch is split by zero-copy slices."""


def partition_tables(table: pa.Table) -> list[tuple[int, pa.Table]]:
    """The rows of a table with a ``_partition`` column (a polled batch, a lake table) per
    partition value, ascending, each in the table's row order. A poll holds each partition's
    messages in a few runs, so the runs are sliced (zero-copy); a table with more than
    :data:`MAX_RUNS` runs is filtered per partition."""
    n = table.num_rows
    if n == 0:
        return []
    column = table["_partition"]
    changes = pc.indices_nonzero(pc.not_equal(column.slice(1), column.slice(0, n - 1)))
    if len(changes) >= MAX_RUNS:
        return [(p, table.filter(pc.equal(column, p)))
                for p in sorted(pc.unique(column).to_pylist())]
    starts = [0, *(i + 1 for i in changes.to_pylist())]
    runs: dict[int, list[pa.Table]] = {}
    for start, end in zip(starts, [*starts[1:], n], strict=True):
        runs.setdefault(column[start].as_py(), []).append(table.slice(start, end - start))
    return [(p, pa.concat_tables(runs[p])) for p in sorted(runs)]


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


def _sorted(table: pa.Table, layout: Layout) -> tuple[pa.Table, pa.Table]:
    """``table`` ordered by Hive partition (unknown account/region as ''), then by
    ``layout.sort_by`` and ``_offset``; with its Hive keys in the same order."""
    keys = hive_keys(table)
    order = pa.table({"account": pc.fill_null(keys["account"], ""),
                      "region": pc.fill_null(keys["region"], ""), "hour": keys["hour"],
                      **{f"s{i}": _column(table, name) for i, name in enumerate(layout.sort_by)},
                      "offset": table["_offset"]})
    indices = pc.sort_indices(order, sort_keys=[(name, "ascending") for name in order.column_names])
    return table.take(indices).combine_chunks(), order.take(indices).combine_chunks()


def _column(table: pa.Table, path: str) -> pa.ChunkedArray:
    """The column (or struct field, ``a.b.c``) at ``path``."""
    top, *rest = path.split(".")
    return pc.struct_field(table[top], rest) if rest else table[top]


def _run_starts(keys: pa.Table) -> list[int]:
    """Row indices where a run of equal (account, region, hour) starts (``keys`` sorted)."""
    n = keys.num_rows
    changed = None
    for name in ("account", "region", "hour"):
        column = keys[name]
        step = pc.not_equal(column.slice(1), column.slice(0, n - 1))
        changed = step if changed is None else pc.or_(changed, step)
    assert changed is not None
    return [0, *(i + 1 for i in pc.indices_nonzero(changed).to_pylist())]


def build_objects(table: pa.Table, *, topic: str, partition: int, cfg: ArchiverConfig,
                  layout: Layout = LAYOUT) -> list[LakeObject]:
    """Split ``table`` (rows of Kafka ``partition``, :data:`LAKE_SCHEMA`, any chunking and
    row order) into one object per Hive partition, keyed by the lowest offset of its rows,
    rows ordered by ``layout``. Deterministic: the same rows and settings give the same keys
    and the same bytes (no writer, token or clock in the file; chunking and input order do
    not matter), so any writer re-writing a range writes the same objects. Cost: one sort
    and one take of the whole table, then per object a Parquet write."""
    if table.num_rows == 0:
        return []
    rows, keys = _sorted(table, layout)
    eff = effective_time_ms(rows)
    starts = _run_starts(keys)
    objects = []
    for start, end in zip(starts, [*starts[1:], rows.num_rows], strict=True):
        part = rows.slice(start, end - start)
        span = pc.min_max(part["_offset"]).as_py()
        first, last = span["min"], span["max"]
        times = pc.min_max(eff.slice(start, end - start)).as_py()
        account, region = keys["account"][start].as_py(), keys["region"][start].as_py()
        objects.append(LakeObject(
            key=object_key(account or None, region or None, keys["hour"][start].as_py() * HOUR_MS,
                           topic, partition, first),
            data=parquet_bytes(part, cfg, layout, {
                b"trailpipe.topic": topic.encode(),
                b"trailpipe.partition": str(partition).encode(),
                b"trailpipe.first_offset": str(first).encode(),
                b"trailpipe.last_offset": str(last).encode()}),
            records=part.num_rows, first_offset=first, last_offset=last,
            oldest_event_time_ms=times["min"], newest_event_time_ms=times["max"]))
    return objects
