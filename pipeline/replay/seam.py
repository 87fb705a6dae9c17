"""The seam between the hot (Kafka) and cold (lake) rows of one replay: one stream, no gap,
no overlap.

Contract. :func:`merge` returns every hot row, then every cold row whose Kafka coordinates
(``_partition``, ``_offset``) no hot row has, each coordinate once (the first cold row of a
coordinate is kept when the lake holds it twice, e.g. an object and its compacted
replacement both listed during a compaction). Records are identified by their coordinates,
not their content: the same record read from both sources has the same coordinates, while two
records with equal content (a producer retry before idempotence) are two records, as Kafka
holds them. Gap-freeness is the callers' part: :func:`pipeline.replay.cold.cold_scope`
makes the lake cover every offset below the hot read's start.

Column-wise: an anti-join of the coordinate columns (Arrow's hash join), then one ``take``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.replay.hot import OFFSET, PARTITION

_ROW = "__row"
_KEYS = [PARTITION, OFFSET]


def merge(hot: pa.Table, cold: pa.Table) -> tuple[pa.Table, int]:
    """(hot rows then the cold rows no hot row has the coordinates of, the number of cold
    rows dropped as duplicates). Both tables have ``_partition``/``_offset`` columns and the
    same other columns (an empty hot table without columns is allowed: nothing was read).
    Raises ValueError when the columns differ."""
    if hot.num_columns == 0 or (hot.num_rows == 0 and cold.num_rows > 0):
        kept = _first_per_coordinate(cold, None)
        return kept, cold.num_rows - kept.num_rows
    if cold.num_rows == 0:
        return hot, 0
    if hot.schema.names != cold.schema.names:
        raise ValueError(f"hot and cold columns differ: {hot.schema.names} vs "
                         f"{cold.schema.names}")
    kept = _first_per_coordinate(cold, hot)
    return pa.concat_tables([hot, kept.cast(hot.schema)]), cold.num_rows - kept.num_rows


def _first_per_coordinate(cold: pa.Table, hot: pa.Table | None) -> pa.Table:
    """The rows of ``cold`` whose coordinates ``hot`` lacks, the first of each coordinate,
    in ``cold``'s order."""
    keys = _coordinates(cold).append_column(_ROW, pa.array(range(cold.num_rows), pa.int64()))
    firsts = keys.group_by(_KEYS, use_threads=False).aggregate([(_ROW, "min")])
    firsts = firsts.rename_columns([_ROW if n == f"{_ROW}_min" else n
                                    for n in firsts.column_names])
    if hot is not None and hot.num_rows:
        firsts = firsts.join(_coordinates(hot), keys=_KEYS, join_type="left anti",
                             use_threads=False)
    rows = pc.sort_indices(firsts.column(_ROW))
    return cold.take(pc.take(firsts.column(_ROW), rows))


def _coordinates(table: pa.Table) -> pa.Table:
    """The coordinate columns alone, cast to their declared types (int32, int64)."""
    return pa.table({PARTITION: pc.cast(table.column(PARTITION), pa.int32()),
                     OFFSET: pc.cast(table.column(OFFSET), pa.int64())})
