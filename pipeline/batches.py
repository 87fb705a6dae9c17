"""The Runner's batch mode, pure parts: a polled batch's Kafka coordinates as Arrow columns,
per-partition offset ranges, and processing a table with poison isolation by bisection.

Per message only the client's accessors run in Python (a few attribute calls); decoding and
everything after it work on whole columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from confluent_kafka import Message

from pipeline.model import TopicPartitionKey, Unavailable

COORDINATE_SCHEMA = pa.schema([
    ("_topic", pa.string()), ("_partition", pa.int32()), ("_offset", pa.int64()),
    ("_timestamp_ms", pa.int64()), ("_key", pa.binary()), ("_size_bytes", pa.int32()),
])
"""The Kafka coordinates appended to every batch table (see ``COORDINATE_COLUMNS``)."""


@dataclass(slots=True)
class Polled:
    """The good messages of one poll, with their values and coordinates as Python lists."""

    messages: list[Message]
    values: list[bytes | None] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, messages: list[Message]) -> Polled:
        return cls(messages, [m.value() for m in messages], [m.topic() or "" for m in messages],
                   [m.partition() or 0 for m in messages], [m.offset() or 0 for m in messages])

    def ranges(self) -> dict[TopicPartitionKey, tuple[int, int]]:
        """(first, last) offset per partition; a partition's offsets ascend within a poll."""
        last = dict(zip(zip(self.topics, self.partitions, strict=True), self.offsets,
                        strict=True))
        first = dict(zip(zip(reversed(self.topics), reversed(self.partitions), strict=True),
                         reversed(self.offsets), strict=True))
        return {tp: (first[tp], last[tp]) for tp in last}

    def coordinates(self, rows: Sequence[int]) -> pa.Table:
        """:data:`COORDINATE_SCHEMA` columns of the messages at ``rows`` (input indices)."""
        msgs = self.messages
        timestamps = [m.timestamp()[1] for m in msgs]
        keys = [m.key() for m in msgs]
        sizes = [len(v) if v is not None else 0 for v in self.values]
        full = pa.Table.from_arrays(
            [pa.array(self.topics, pa.string()), pa.array(self.partitions, pa.int32()),
             pa.array(self.offsets, pa.int64()), pa.array(timestamps, pa.int64()),
             pa.array(keys, pa.binary()), pa.array(sizes, pa.int32())],
            schema=COORDINATE_SCHEMA)
        if len(rows) == len(msgs):
            return full
        return full.take(pa.array(rows, pa.int64()))


def with_coordinates(events: pa.Table, coordinates: pa.Table) -> pa.Table:
    """The event columns followed by the coordinate columns (same row count)."""
    return pa.Table.from_arrays([*events.columns, *coordinates.columns],
                                names=[*events.column_names, *coordinates.column_names])


ProcessFn = Callable[[pa.Table], Iterable[Any]]


def process_isolating(process: ProcessFn, table: pa.Table
                      ) -> tuple[list[Any], list[tuple[int, Exception]]]:
    """Run ``process`` on ``table``; when it raises, split the table in halves and retry each,
    down to single rows. Returns the outputs (in row order of the pieces that succeeded) and
    ``(row, exception)`` for each row that fails alone (the caller dead-letters them).
    :class:`~pipeline.model.Unavailable` is not the rows' fault: it propagates."""
    try:
        return list(process(table)), []
    except Unavailable:
        raise
    except Exception as exc:  # poison somewhere in the table: isolate it
        if table.num_rows <= 1:
            return [], [(0, exc)]
    half = table.num_rows // 2
    outputs, failed = process_isolating(process, table.slice(0, half))
    more, failed_right = process_isolating(process, table.slice(half))
    return outputs + more, failed + [(half + i, e) for i, e in failed_right]
