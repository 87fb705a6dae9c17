"""The ``Aggregate`` record (``schemas/Aggregate.v1.avsc``) as Arrow, and where its rows live in
the lake.

Lake layout (Hive partitions; the date is the UTC day of the window start)::

    aggregates/window_size=<1m|1h>/date=YYYY-MM-DD/p<partition>-<first offset, 20 digits>.parquet

A Parquet object holds every column of :data:`ARROW_SCHEMA`, ``window_size`` included, so a
file copied out of the lake is still a complete record; ``date`` lives only in the path. Read
with Hive partitioning (``window_size``, ``date`` as strings; pyarrow and DuckDB both unify the
in-file ``window_size`` with the path's) a dataset gives back both columns and prunes on them.
Keys are deterministic (events partition, first offset), so a retry overwrites the same object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipeline.events.batch_arrow import avro_arrow_type
from pipeline.events.schemas import default_registry

AGGREGATE = "io.trailpipe.audit.Aggregate"
AGGREGATES_DIR = "aggregates"
WINDOW_MS = {"1m": 60_000, "1h": 3_600_000}
"""Window sizes and their lengths."""
WINDOW_SIZES = tuple(WINDOW_MS)

_AVRO: dict[str, Any] = default_registry().newest(AGGREGATE).raw
ARROW_SCHEMA = pa.schema([pa.field(f.name, f.type, nullable=False)
                          for f in avro_arrow_type(_AVRO)])
"""One column per field of the newest Aggregate schema, same names and order; the value lists
as list<struct<value: string, count: int64>>."""
_DEFAULTS = {f["name"]: f["default"] for f in _AVRO["fields"] if "default" in f}

PARTITIONING_SCHEMA = pa.schema([("window_size", pa.string()), ("date", pa.string())])
"""The Hive partition columns of ``aggregates/``."""


def to_table(datums: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The datums (as :func:`pipeline.events.records.decode_record` returns them, or as the
    aggregator encodes them) as a table of :data:`ARROW_SCHEMA`. Fields with an Avro default
    may be left out. Raises pyarrow's ArrowInvalid/ArrowTypeError when a value does not fit
    and a ValueError when a required field is missing."""
    rows = [{**_DEFAULTS, **d} for d in datums]
    # from_pylist leaves a missing required field null even in a non-nullable column.
    table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
    for name in table.column_names:
        if table.column(name).null_count:
            raise ValueError(f"Aggregate datum without {name}")
    return table


def lake_date(ms: int) -> str:
    """The ``date`` partition value (UTC day, ``YYYY-MM-DD``) of an epoch-ms time."""
    return f"{datetime.fromtimestamp(ms / 1000, tz=UTC):%Y-%m-%d}"


def object_key(window_size: str, window_start_ms: int, partition: int, first_offset: int) -> str:
    """The lake key of the Parquet object holding the ``window_size`` rows of one date (the UTC
    day of ``window_start_ms``) written from events partition ``partition``, starting at
    ``first_offset``. Raises ValueError for a window size other than 1m or 1h."""
    if window_size not in WINDOW_SIZES:
        raise ValueError(f"window_size must be one of {', '.join(WINDOW_SIZES)}, "
                         f"not {window_size!r}")
    return (f"{AGGREGATES_DIR}/window_size={window_size}/date={lake_date(window_start_ms)}/"
            f"p{partition}-{first_offset:020d}.parquet")
