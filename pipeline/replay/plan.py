"""The replay plan: which partitions of the events topic to read, from where to where.

Pure given the topic's metadata (:func:`build_plan`); :mod:`pipeline.replay.hot` fetches that
metadata and runs the plan. Per partition:

* **start** = ``offsets_for_times(from_ms - lateness_ms)``: the first offset whose record
  timestamp is at or after the window start widened by the lateness margin L. A record whose
  ``eventTime`` is in the window but which was appended up to L later than records of a later
  event time is therefore still read (kcat's ``-o s@`` would start too late for it). When no
  record is that new, start = end (nothing to read).
* **end** = the high watermark captured when the run starts (exclusive): records appended while
  the replay runs are not read, so the run ends, and the same command over an unchanged topic
  reads the same records.
* When both account and region are filtered, only the one partition the Java-compatible murmur2
  partitioner assigns to the key ``account|region``
  (:func:`pipeline.events.partition.partition_for_account`) is read.

Estimated records are offset distances (transaction markers and compacted gaps included, so an
upper bound). A partition whose log start offset is above 0 and whose start is that log start
may miss older records of the window: retention removed them (``maybe_truncated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.events.partition import partition_for_account
from pipeline.replay.filters import Filters


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets ``[start, end)`` of one partition to read; ``low`` is its log start offset."""

    partition: int
    start: int
    end: int
    low: int

    @property
    def estimated_records(self) -> int:
        return self.end - self.start

    @property
    def maybe_truncated(self) -> bool:
        return self.low > 0 and self.start == self.low

    def to_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "start": self.start, "end": self.end,
                "low": self.low, "estimated_records": self.estimated_records,
                "maybe_truncated": self.maybe_truncated}


@dataclass(frozen=True, slots=True)
class Plan:
    """The partitions a replay reads (sorted by partition) out of ``num_partitions``."""

    topic: str
    num_partitions: int
    seek_ms: int
    ranges: tuple[PartitionRange, ...]

    @property
    def estimated_records(self) -> int:
        return sum(r.estimated_records for r in self.ranges)

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "num_partitions": self.num_partitions,
                "seek_ms": self.seek_ms, "partitions": [r.to_json() for r in self.ranges],
                "estimated_records": self.estimated_records,
                "coverage_gap": [r.partition for r in self.ranges if r.maybe_truncated]}


def seek_ms(filters: Filters, lateness_ms: int) -> int:
    """The record timestamp each partition is searched for: ``from_ms - lateness_ms``, never
    negative (negative timestamps mean "latest"/"earliest" to ListOffsets)."""
    return max(0, filters.from_ms - lateness_ms)


def partitions_to_read(filters: Filters, num_partitions: int) -> list[int]:
    """Every partition, or only the one holding ``account|region`` when both are filtered."""
    if filters.account is not None and filters.region is not None:
        return [partition_for_account(filters.account, filters.region, num_partitions)]
    return list(range(num_partitions))


def build_plan(topic: str, filters: Filters, lateness_ms: int, num_partitions: int,
               watermarks: Mapping[int, tuple[int, int]],
               time_offsets: Mapping[int, int]) -> Plan:
    """The plan from the topic's metadata: ``watermarks[p] = (low, high)`` and
    ``time_offsets[p]`` = the offset ``offsets_for_times(seek_ms)`` returned for p (negative
    when no record is that new). Both must hold every partition :func:`partitions_to_read`
    names (KeyError otherwise)."""
    ranges = []
    for p in partitions_to_read(filters, num_partitions):
        low, high = watermarks[p]
        found = time_offsets[p]
        start = high if found < 0 else min(max(found, low), high)
        ranges.append(PartitionRange(p, start, high, low))
    return Plan(topic, num_partitions, seek_ms(filters, lateness_ms), tuple(ranges))
