"""Tumbling event-time windows of one events partition, kept as Arrow partial counts.

Semantics (one partition, records in offset order):

* the partition's **watermark** after a record is ``max(eventTime seen so far) - grace_ms``;
* a window ``[start, end)`` is **closed** once the watermark reaches ``end``; it is emitted once,
  triggered by the record that moved the watermark to ``end`` (its offset: ``trigger_offset``);
* a record whose window is already closed when it arrives (``end <= watermark``) is **late**: it
  becomes a **correction** of that window (one per window key and batch, keyed by the first late
  record's offset) instead of being dropped.

Since every aggregate key contains (account, region) and the events topic is keyed by
account|region, all records of a key are in one partition: per-partition watermarks give exact
per-key results with no cross-partition coordination.

Everything is columnar. :class:`OpenWindows` keeps, per window size, the batch's counts grouped
by window start, key and value columns (one small Arrow table per batch); closing a window
filters its rows out and compacts the rest. Python touches one row per *emitted* cell only.
Its changelog (:meth:`OpenWindows.changes`) is Arrow IPC: appended partials between closes, one
snapshot after a close, tombstones for what the snapshot replaced.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.aggregates.columns import DIMENSIONS

KEY_COLUMNS = ("start", *DIMENSIONS)
CHUNK_ROWS = 20_000
"""Rows per changelog record (zstd Arrow IPC stays well under Kafka's 1 MB message limit)."""
_IPC = pa.ipc.IpcWriteOptions(compression="zstd")


def watermarks_of(times: pa.Array, max_time_ms: int | None, grace_ms: int) -> pa.Array:
    """The partition's watermark after each record (non-decreasing)."""
    seen = times if max_time_ms is None else pc.max_element_wise(
        times, pa.scalar(max_time_ms, pa.int64()))
    return pc.subtract(pc.cumulative_max(seen), grace_ms)


def window_starts(times: pa.Array, size_ms: int) -> pa.Array:
    return pc.multiply(pc.divide(times, size_ms), size_ms)


def trigger_offsets(ends: Sequence[int], watermarks: list[int], offsets: list[int]
                    ) -> dict[int, int]:
    """For each window end the watermark reached: the offset of the first record that took the
    watermark to it (``watermarks`` ascend)."""
    return {end: offsets[bisect.bisect_left(watermarks, end)] for end in ends}


class OpenWindows:
    """The open windows of one size: partial counts per ``group`` columns (see module doc)."""

    def __init__(self, name: str, size_ms: int, group: Sequence[str]) -> None:
        self.name, self.size_ms, self.group = name, size_ms, list(group)
        self._parts: list[pa.Table] = []
        self._new: list[pa.Table] = []
        self._starts: set[int] = set()
        self._live: dict[str, pa.Table] = {}
        self._snapshot_due = False

    @property
    def open_starts(self) -> set[int]:
        return set(self._starts)

    def add(self, rows: pa.Table) -> None:
        """Count on-time ``rows`` (with a ``start`` column and the group columns)."""
        if rows.num_rows == 0:
            return
        partial = rows.group_by(self.group, use_threads=False).aggregate(
            [("offset", "count"), ("offset", "min")]).rename_columns(
            [*self.group, "count", "first_offset"])
        self._parts.append(partial)
        self._new.append(partial)
        self._starts.update(pc.unique(partial.column("start")).to_pylist())

    def close(self, watermark_ms: int) -> pa.Table | None:
        """Remove and return the rows of every window whose end the watermark reached
        (None when none did); the rest is compacted to one table."""
        due = [s for s in self._starts if s + self.size_ms <= watermark_ms]
        if not due:
            return None
        table = pa.concat_tables(self._parts)
        closing = pc.is_in(table.column("start"), pa.array(due, pa.int64()))
        rest = table.filter(pc.invert(closing))
        self._parts = [compact(rest, self.group)] if rest.num_rows else []
        self._starts.difference_update(due)
        self._snapshot_due = True
        return table.filter(closing)

    def changes(self) -> Iterator[tuple[str, bytes | None]]:
        """Changelog records since the last call: after a close a snapshot of what is open (and
        tombstones for the records it replaces), otherwise the new partials."""
        if self._snapshot_due:
            for key in self._live:
                yield key, None
            self._live = {}
            fresh = pa.concat_tables(self._parts) if self._parts else None
        else:
            fresh = pa.concat_tables(self._new) if self._new else None
        self._new, self._snapshot_due = [], False
        if fresh is None or fresh.num_rows == 0:
            return
        first = pc.min(fresh.column("first_offset")).as_py()
        for i, start in enumerate(range(0, fresh.num_rows, CHUNK_ROWS)):
            key = f"{self.name}|{first}|{i}"
            chunk = fresh.slice(start, CHUNK_ROWS)
            self._live[key] = chunk
            yield key, _ipc(chunk)

    def restore(self, key: str, value: bytes | None) -> None:
        """Apply one changelog record (in changelog order); :meth:`restored` finishes."""
        if value is None:
            self._live.pop(key, None)
        else:
            self._live[key] = pa.ipc.open_stream(value).read_all()

    def restored(self) -> None:
        """After the last :meth:`restore`: the live records become the open state."""
        self._parts = [compact(pa.concat_tables(list(self._live.values())), self.group)] \
            if self._live else []
        self._starts = set(pc.unique(self._parts[0].column("start")).to_pylist()) \
            if self._parts else set()
        self._new = []


def compact(table: pa.Table, group: Sequence[str]) -> pa.Table:
    """Partial counts merged per group (count summed, first offset the least)."""
    return table.group_by(list(group), use_threads=False).aggregate(
        [("count", "sum"), ("first_offset", "min")]).rename_columns(
        [*group, "count", "first_offset"])


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
