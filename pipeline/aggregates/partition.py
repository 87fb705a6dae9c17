"""Everything the aggregator keeps for one events partition: the open 1-minute and 1-hour
windows, the 1-minute Insights partials, the watermark, and the Insights engine.

:meth:`PartitionState.add` takes the aggregation columns of the partition's records of one
batch (offsets ascending) and returns what they closed: corrections for late records, then the
closed windows' datums, then the Insights events of the minutes that closed. It computes before
it changes anything but the state itself; the caller restores from the changelog on any error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.aggregates.cells import (
    INSIGHT_GROUP,
    aggregate_datum,
    cell_rows,
    minute_stats,
)
from pipeline.aggregates.table import WINDOW_MS
from pipeline.aggregates.windows import (
    KEY_COLUMNS,
    OpenWindows,
    trigger_offsets,
    watermarks_of,
    window_starts,
)

MINUTE_MS = 60_000
VALUE_GROUP = (*KEY_COLUMNS, "principal", "source_ip")
META_KEY = "meta"


class Insights(Protocol):
    """What the partition needs of the Insights engine (:mod:`pipeline.insights`)."""

    def close_minute(self, minute_start_ms: int, stats: Any) -> list[dict[str, Any]]: ...

    def changes(self) -> dict[str, bytes | None]: ...

    def restore(self, key: str, value: bytes) -> None: ...


@dataclass(slots=True)
class Closed:
    """The outputs of one batch of a partition."""

    aggregates: list[dict[str, Any]] = field(default_factory=list)
    insights: list[dict[str, Any]] = field(default_factory=list)


class PartitionState:
    """See the module docstring. ``stats_of(minute_stats dict)`` adapts Insights statistics to
    the engine's type."""

    def __init__(self, partition: int, *, grace_ms: int, max_values: int,
                 insights: Insights | None, stats_of: Callable[[dict[str, Any]], Any],
                 clock: Callable[[], int]) -> None:
        self.partition, self.grace_ms, self.max_values = partition, grace_ms, max_values
        self.windows = {size: OpenWindows(size, ms, VALUE_GROUP)
                        for size, ms in WINDOW_MS.items()}
        self.minutes = OpenWindows("insights", MINUTE_MS, INSIGHT_GROUP)
        self.insights, self._stats_of, self._clock = insights, stats_of, clock
        self.max_time_ms: int | None = None
        self.last_minute_ms: int | None = None  # the last minute handed to Insights
        self.late_events = 0
        self._meta_dirty = False
        self._restoring: dict[str, bytes | None] = {}

    @property
    def watermark_ms(self) -> int | None:
        return None if self.max_time_ms is None else self.max_time_ms - self.grace_ms

    def add(self, rows: pa.Table) -> Closed:
        times = rows.column("time_ms").combine_chunks()
        marks_arr = watermarks_of(times, self.max_time_ms, self.grace_ms)
        marks: list[int] = marks_arr.to_pylist()
        # The batch's watermark first: every record it emits (corrections too) carries it.
        self.max_time_ms = marks[-1] + self.grace_ms
        self._meta_dirty = True
        out = Closed()
        for size, size_ms in WINDOW_MS.items():
            starts = window_starts(times, size_ms)
            late = pc.less_equal(pc.add(starts, size_ms), marks_arr)
            with_start = rows.append_column("start", starts)
            self.windows[size].add(with_start.filter(pc.invert(late)))
            if size == "1m":
                self.late_events += pc.sum(late).as_py() or 0
                on_time = with_start.filter(pc.and_(pc.invert(late),
                                                    rows.column("write_management")))
                self.minutes.add(on_time)
            out.aggregates += self._corrections(size, with_start.filter(late))
        offsets: list[int] = rows.column("offset").to_pylist()
        for size in WINDOW_MS:
            out.aggregates += self._close(size, marks, offsets)
        out.insights += self._close_minutes(marks[-1])
        return out

    def _corrections(self, size: str, late: pa.Table) -> list[dict[str, Any]]:
        if late.num_rows == 0:
            return []
        partial = late.group_by(list(VALUE_GROUP), use_threads=False).aggregate(
            [("offset", "count"), ("offset", "min")]).rename_columns(
            [*VALUE_GROUP, "count", "first_offset"])
        return [self._datum(row, size, row["first_offset"], True)
                for row in cell_rows(partial)]

    def _close(self, size: str, marks: list[int], offsets: list[int]) -> list[dict[str, Any]]:
        closed = self.windows[size].close(marks[-1])
        if closed is None:
            return []
        size_ms = WINDOW_MS[size]
        rows = sorted(cell_rows(closed), key=lambda r: r["start"])
        triggers = trigger_offsets(sorted({r["start"] + size_ms for r in rows}), marks, offsets)
        return [self._datum(r, size, triggers[r["start"] + size_ms], False) for r in rows]

    def _datum(self, row: dict[str, Any], size: str, trigger: int, correction: bool
               ) -> dict[str, Any]:
        return aggregate_datum(row, size=size, size_ms=WINDOW_MS[size],
                               partition=self.partition, trigger_offset=trigger,
                               correction=correction, watermark_ms=self.watermark_ms or 0,
                               emitted_ms=self._clock(), max_values=self.max_values)

    def _close_minutes(self, watermark_ms: int) -> list[dict[str, Any]]:
        """Hand every minute the watermark closed to Insights, in order, zero minutes too."""
        closed = self.minutes.close(watermark_ms)
        per_minute = minute_stats(closed) if closed is not None else {}
        if self.insights is None:
            return []
        last_closed = (watermark_ms // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        if self.last_minute_ms is None:
            if not per_minute:
                return []
            self.last_minute_ms = min(per_minute) - MINUTE_MS
        events: list[dict[str, Any]] = []
        minute = self.last_minute_ms + MINUTE_MS
        while minute <= last_closed:
            stats = {k: self._stats_of(v) for k, v in per_minute.get(minute, {}).items()}
            events += self.insights.close_minute(minute, stats)
            minute += MINUTE_MS
        self.last_minute_ms = max(self.last_minute_ms, last_closed)
        return events

    def changes(self) -> Iterator[tuple[str, bytes | None]]:
        """Changelog records of everything changed since the last call."""
        for store in (*self.windows.values(), self.minutes):
            yield from store.changes()
        if self.insights is not None:
            yield from sorted(self.insights.changes().items())
        if self._meta_dirty:
            self._meta_dirty = False
            yield META_KEY, orjson.dumps({"max_time_ms": self.max_time_ms,
                                          "last_minute_ms": self.last_minute_ms,
                                          "late_events": self.late_events})

    def restore(self, key: str, value: bytes | None) -> None:
        """Apply one changelog record; call :meth:`restored` after the last."""
        prefix = key.split("|", 1)[0]
        if key == META_KEY and value is not None:
            meta = orjson.loads(value)
            self.max_time_ms, self.last_minute_ms = meta["max_time_ms"], meta["last_minute_ms"]
            self.late_events = meta["late_events"]
        elif prefix in self.windows:
            self.windows[prefix].restore(key, value)
        elif prefix == self.minutes.name:
            self.minutes.restore(key, value)
        else:  # the Insights engine's: applied last-value-wins in restored()
            self._restoring[key] = value

    def restored(self) -> None:
        for store in (*self.windows.values(), self.minutes):
            store.restored()
        if self.insights is not None:
            for key, value in self._restoring.items():
                if value is not None:
                    self.insights.restore(key, value)
        self._restoring = {}
