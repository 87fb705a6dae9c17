"""Lake rows as the hot path's rows: a lake table (:data:`pipeline.lake.columns.LAKE_SCHEMA`)
converted to the decoded events table shape, column by column.

Contract. :func:`decoded_table` gives the columns :func:`pipeline.daemon.events_decoder`
produces (the newest ApiCallEvent schema's fields, Avro names and types: camelCase, nested
structs, ``eventTimeMs``, booleans) followed by ``_partition`` (int32) and ``_offset``
(int64), so :func:`pipeline.replay.filters.mask` and
:func:`pipeline.replay.canonical.canonical_records` work on it unchanged and give the same
bytes as for the same record read from Kafka. It is the inverse of
:func:`pipeline.lake.columns.lake_table`: each Avro field is the lake column
:func:`~pipeline.lake.columns.lake_name` names (struct fields matched by lower-cased name,
lists element-wise); the lake's ``"true"``/``"false"`` strings become booleans again. A field
the lake has no column for is all-null (a lake written before that field existed).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.batch_arrow import avro_arrow_type
from pipeline.events.schemas import default_registry
from pipeline.lake.columns import convert_column, lake_name
from pipeline.replay.hot import OFFSET, PARTITION

EVENT_TYPE: pa.StructType = avro_arrow_type(default_registry().newest().raw)
"""The decoded events row type (what the hot path's decoder produces)."""
COORDINATES = pa.schema([(PARTITION, pa.int32()), (OFFSET, pa.int64())])
DECODED_SCHEMA = pa.schema([*EVENT_TYPE, *COORDINATES])
"""The columns of :func:`decoded_table`."""


def empty_decoded() -> pa.Table:
    """A table of :data:`DECODED_SCHEMA` without rows."""
    return DECODED_SCHEMA.empty_table()


def decoded_table(lake: pa.Table) -> pa.Table:
    """The rows of a lake table in the decoded events shape (see the module contract).
    Raises KeyError when ``_partition`` or ``_offset`` is missing."""
    lake = lake.combine_chunks()
    n = lake.num_rows
    present = set(lake.column_names)
    columns = []
    for f in EVENT_TYPE:
        name = lake_name(f.name, top=True)
        src = _single(lake.column(name)) if name in present else None
        columns.append(convert_column(src, f.type, n))
    for f in COORDINATES:
        columns.append(pc.cast(_single(lake.column(f.name)), f.type))
    return pa.Table.from_arrays(columns, schema=DECODED_SCHEMA)


def _single(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
