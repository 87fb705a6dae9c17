"""Buffered rows of one Kafka partition (Arrow tables of :data:`LAKE_SCHEMA`) → zstd Parquet
objects, one per Hive partition (account, region, event-time hour), keyed by
:func:`pipeline.lake.layout.object_key`. Columnar throughout: no Python per row, only per
buffered table and per object.

Object layout, chosen by measurement (``bench/parquet_tuning.py``: 200k generated events as
the ``archive`` bench fills them, 6 Kafka partitions; lake bytes / gzip-6 CloudTrail JSON bytes
(one file per account/region/hour) for flushes of 50k / 100k / 200k events, i.e. objects of
~3.3k / 6.7k / 13k rows; CPU per row of ``build_objects`` (sort + encode) at 100k, best of 2,
on a shared 2-core machine under load ~10, so only the ratios between rows are reliable):

=======================================  =====  =====  =====  ==========
layout (each step adds to the one above)  50k    100k   200k   µs/row
=======================================  =====  =====  =====  ==========
old: offset order, pyarrow defaults       0.850  0.812  0.775  6.7-7.2
sort eventsource, eventname, time         0.827  0.795  0.766  ~8
sort useridentity.arn, source, name, time 0.780  0.746  0.716  ~6.4
+ statistics only on filter columns       0.767  0.740  0.713  ~6.5
+ no Arrow schema in the footer           0.746  0.729  0.708  ~7
+ no dictionary on unique columns         0.695  0.672  0.641  ~7
+ delta ints, DLBA ids (= :data:`LAYOUT`) 0.655  0.633  0.593  ~6.4
  ... with BYTE_STREAM_SPLIT ints         0.653  0.635  0.598  ~5.8
  ... in offset order instead             0.718  0.698  0.656  ~6.2
  ... with zstd 1 (recommended level)     0.646  0.604  0.584  ~4.5-5.5
=======================================  =====  =====  =====  ==========

At 100k, zstd 2 / 4 / 6 / 9 give 0.606 / 0.611 / 0.594 / 0.605: zstd 3 is an outlier (worse
than 1, 2 and 4 on this data); level 6 and up buy ~1 % for +30-80 % CPU. Row-group size does
not matter (objects are smaller than one row group). The bytes are mostly ``eventid`` and
``requestid`` (random UUIDs, ~20 B/row each: their entropy); the sort groups each principal's rows,
so identity, IP, agent and resource columns compress well.
Sorting costs ~1 µs/row more than offset order (sort + take of the nested table ≈ 2 µs/row).
Rows end with ``_offset`` as the tie-break, so the order is total and deterministic; readers
dedupe on (``_partition``, ``_offset``), never on row order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
    """The rows of a lake table per ``_partition`` value, ascending, each in the table's row
    order. A poll holds each partition's messages in a few runs, so the runs are sliced
    (zero-copy); a table with more than :data:`MAX_RUNS` runs is filtered per partition."""
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


def _leaf_paths() -> tuple[str, ...]:
    """The Parquet leaf column paths of :data:`LAKE_SCHEMA` (``a.b``, ``l.list.element.x``)."""
    out = pa.BufferOutputStream()
    pq.write_table(LAKE_SCHEMA.empty_table(), out)
    schema = pq.read_metadata(pa.BufferReader(out.getvalue())).schema
    return tuple(schema.column(i).path for i in range(len(schema)))


LEAVES = _leaf_paths()
_INTS = ("_event_time_ms", "_ingest.ingesttimems", "_offset", "_timestamp_ms")
_UNIQUE_TEXT = ("eventid", "requestid", "sharedeventid", "requestparameters",
                "responseelements", "_ingest.location")
"""Text that is (nearly) unique per row: a dictionary only adds an index per row to it."""
_STATISTICS = ("eventtime", "eventsource", "eventname", "awsregion", "sourceipaddress",
               "errorcode", "eventtype", "readonly", "recipientaccountid", "eventcategory",
               "managementevent", "useridentity.type", "useridentity.arn",
               "useridentity.accountid", "useridentity.principalid", "useridentity.username",
               "useridentity.accesskeyid", "_event_time_ms", "_partition", "_offset",
               "_timestamp_ms")
"""Columns CloudTrail queries filter on (or readers dedupe on): min/max statistics for these
only (statistics of JSON text are long, slow to compute and prune nothing)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """How rows are ordered inside an object and how the Parquet file is encoded (zstd level
    and row-group size come from :class:`ArchiverConfig`). ``sort_by``: lake columns, then
    ``_offset`` as the final tie-break (``a.b`` names a struct field); ``dictionary``: the
    leaf columns (:data:`LEAVES`) written with dictionary encoding (None: all); ``encodings``:
    leaf column → Parquet encoding for some of the others; ``statistics``: the leaf columns
    with min/max statistics (None: all); ``store_schema``: also store the Arrow schema in
    the footer (not needed: the Parquet schema reads back as :data:`LAKE_SCHEMA`)."""

    sort_by: tuple[str, ...] = ("useridentity.arn", "eventsource", "eventname",
                                "_event_time_ms")
    dictionary: tuple[str, ...] | None = tuple(
        c for c in LEAVES if c not in _INTS and c not in _UNIQUE_TEXT)
    encodings: Mapping[str, str] = field(default_factory=lambda: {
        **{c: "DELTA_BINARY_PACKED" for c in _INTS},
        **{c: "DELTA_LENGTH_BYTE_ARRAY" for c in ("eventid", "requestid")}})
    statistics: tuple[str, ...] | None = _STATISTICS
    store_schema: bool = False


LAYOUT = Layout()
"""The default layout (see the module docstring for the measurements behind it)."""

OLD_LAYOUT = Layout(sort_by=(), dictionary=None, encodings={}, statistics=None,
                    store_schema=True)
"""The layout before tuning (offset order, pyarrow's defaults), for comparisons."""


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


def parquet_bytes(table: pa.Table, cfg: ArchiverConfig, layout: Layout,
                  meta: dict[bytes, bytes]) -> bytes:
    """``table`` as a zstd Parquet file with key-value metadata ``meta`` (a pure function of
    its arguments)."""
    out = pa.BufferOutputStream()
    dictionary: bool | list[str] = True if layout.dictionary is None else list(layout.dictionary)
    statistics: bool | list[str] = True if layout.statistics is None else list(layout.statistics)
    with pq.ParquetWriter(out, table.schema.remove_metadata(), compression="zstd",
                          compression_level=cfg.zstd_level, use_dictionary=dictionary,
                          column_encoding=dict(layout.encodings) or None,
                          write_statistics=statistics, store_schema=layout.store_schema) as w:
        w.write_table(table, row_group_size=cfg.row_group_rows)
        w.add_key_value_metadata(meta)
    return bytes(out.getvalue().to_pybytes())
