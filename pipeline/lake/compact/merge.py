"""The Parquet side of ``lake compact``: merge objects (sort by Kafka coordinates, drop exact
duplicates), split the rows into objects of about the target size, and describe an object for
its delivery notice. Columnar throughout (Arrow compute, no per-row Python)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.lake.compact.plan import CompactionError
from pipeline.lake.digest.verify import event_hour
from pipeline.lake.layout import HOUR_MS, Delivery

COORDINATES = ("_partition", "_offset")
SORT_KEYS = [("_partition", "ascending"), ("_offset", "ascending")]


@dataclass(frozen=True, slots=True)
class Merged:
    """Rows of a unit in (``_partition``, ``_offset``) order, each coordinate once."""

    table: pa.Table
    rows_in: int


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


def merge(objects: Sequence[bytes]) -> Merged:
    """Concatenate the objects (in the given order), sort stably by (``_partition``,
    ``_offset``) and keep the first row of every coordinate. Columns missing from some objects
    are null there. Raises CompactionError when an object lacks the coordinates or the
    schemas conflict."""
    tables = [read_parquet(d).replace_schema_metadata(None) for d in objects]
    for t in tables:
        if not all(c in t.column_names for c in COORDINATES):
            raise CompactionError(f"an object lacks the columns {COORDINATES}")
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CompactionError(f"objects have conflicting schemas: {exc}") from exc
    rows_in = table.num_rows
    table = table.take(pc.sort_indices(table, sort_keys=SORT_KEYS))
    return Merged(table.filter(_first_of_each(table)), rows_in)


def _first_of_each(table: pa.Table) -> pa.Array:
    """True for each row whose coordinates differ from the previous row's (rows with a null
    coordinate are always kept)."""
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.bool_())
    partition, offset = (table[name].combine_chunks() for name in COORDINATES)
    differs = pc.or_(pc.not_equal(partition.slice(1), partition.slice(0, n - 1)),
                     pc.not_equal(offset.slice(1), offset.slice(0, n - 1)))
    return pa.concat_arrays([pa.array([True]), pc.fill_null(differs, True)])


def split_sizes(rows: int, estimated_bytes: int, target_bytes: int) -> list[int]:
    """Row counts of consecutive outputs: as few as keep each under ``target_bytes`` by the
    estimate, as even as possible. No outputs for no rows."""
    if rows == 0:
        return []
    k = min(rows, max(1, -(-estimated_bytes // target_bytes)))
    return [rows // k + (1 if i < rows % k else 0) for i in range(k)]


def estimate_bytes(input_bytes: int, rows_in: int, rows_out: int) -> int:
    """Compressed size of ``rows_out`` rows at the inputs' bytes per row."""
    return input_bytes * rows_out // rows_in if rows_in else 0


def to_parquet(table: pa.Table, *, topic: str, unit: str, zstd_level: int,
               row_group_rows: int) -> bytes:
    meta = {b"trailpipe.topic": topic.encode(), b"trailpipe.compaction": unit.encode()}
    out = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(meta), out, compression="zstd",
                   compression_level=zstd_level, row_group_size=row_group_rows)
    return bytes(out.getvalue().to_pybytes())


def describe(lake: str, key: str, data: bytes, table: pa.Table, *, topic: str,
             delivered_at_ms: int) -> Delivery:
    """The delivery notice of a compacted object. ``partition`` is the Kafka partition of its
    rows, -1 when they come from several; first/last offset are the least and greatest
    ``_offset``; event times from ``_event_time_ms`` (else the ingest time), else the hour."""
    parts = pc.min_max(table["_partition"]).as_py()
    offsets = pc.min_max(table["_offset"]).as_py()
    oldest, newest = _event_times(key, table)
    partition = parts["min"] if parts["min"] == parts["max"] and parts["min"] is not None else -1
    return Delivery(lake, key, hashlib.sha256(data).hexdigest(), len(data), table.num_rows,
                    topic, partition, offsets["min"] if offsets["min"] is not None else -1,
                    offsets["max"] if offsets["max"] is not None else -1, oldest, newest,
                    delivered_at_ms)


def _event_times(key: str, table: pa.Table) -> tuple[int, int]:
    names = table.column_names
    if "_event_time_ms" in names:
        times = table["_event_time_ms"]
        ingest = table.schema.field("_ingest").type if "_ingest" in names else pa.null()
        if pa.types.is_struct(ingest) and ingest.get_field_index("ingesttimems") >= 0:
            times = pc.coalesce(times, pc.struct_field(table["_ingest"], "ingesttimems"))
        mm = pc.min_max(times).as_py()
        if mm["min"] is not None:
            return int(mm["min"]), int(mm["max"])
    hour = event_hour(key) or 0
    return hour, hour + HOUR_MS - 1
