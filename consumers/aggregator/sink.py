"""The aggregator's lake sink: aggregates as zstd Parquet under ``aggregates/``, exactly once.

Every commit cycle flushes (the aggregator's state is in the changelog as of each commit, so
nothing may be held back): one object per (window size, UTC date of the window start, events
partition), named by the least ``trigger_offset`` of its rows
(:func:`pipeline.aggregates.table.object_key`). The emissions of a partition are a
deterministic sequence in offset order, and a cycle holds a contiguous run of it, so after a
crash the re-read cycle starting at the committed offset writes an object under the same key
as the aborted one: the retry overwrites it instead of adding a duplicate.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import pyarrow.parquet as pq

from consumers.aggregator.processor import AggregateRow
from pipeline.aggregates.table import lake_date, object_key, to_table
from pipeline.lake.store import ObjectStore
from pipeline.logs import get_logger
from pipeline.model import Event, SinkBase

log = get_logger("consumers.aggregator.sink")


class AggregatesSink(SinkBase):
    """Buffers :class:`AggregateRow` outputs; ``flush`` writes them (see the module doc)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._rows: list[AggregateRow] = []
        self.objects_written = 0
        self.rows_written = 0
        self.bytes_written = 0  # Parquet bytes put, retries included (as objects_written)

    def add(self, item: Any, source: Event | None) -> None:
        if not isinstance(item, AggregateRow):
            raise TypeError(f"the aggregates sink takes AggregateRow, not {type(item).__name__}")
        self._rows.append(item)

    def should_flush(self, now_ms: int) -> bool:
        return False  # the Runner's commit interval decides; every cycle flushes all

    def flush(self) -> None:
        groups: dict[tuple[str, str, int], list[AggregateRow]] = defaultdict(list)
        for row in self._rows:
            d = row.datum
            groups[(d["window_size"], lake_date(d["window_start_ms"]), row.partition)].append(row)
        for (size, _, partition), rows in sorted(groups.items()):
            first = min(r.trigger_offset for r in rows)
            key = object_key(size, rows[0].datum["window_start_ms"], partition, first)
            out = io.BytesIO()
            pq.write_table(to_table([r.datum for r in rows]), out, compression="zstd")
            data = out.getvalue()
            self._store.put(key, data)
            self.objects_written += 1
            self.bytes_written += len(data)
            self.rows_written += len(rows)
        self._rows = []

    def discard(self) -> None:
        self._rows = []

    def healthcheck(self) -> bool:
        try:
            self._store.head("aggregates/")
            return True
        except Exception as exc:  # never raises: see Sink.healthcheck
            log.warning("lake_unreachable", lake=self._store.url, error=str(exc))
            return False
