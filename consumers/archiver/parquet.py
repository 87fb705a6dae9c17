"""How an archiver object is written as Parquet: row order and encodings.

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
import pyarrow.parquet as pq

from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.config import ArchiverConfig


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
