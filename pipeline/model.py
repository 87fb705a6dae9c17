"""The core shapes every daemon is built from: Event, KafkaRecord, Processor, Sink.

A daemon is a Processor (pure logic, may hold per-partition state) and a Sink (buffers outputs
and makes them durable), handed to the one poll loop in :mod:`pipeline.runner`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

TopicPartitionKey = tuple[str, int]
"""(topic, partition): a hashable partition coordinate used for offset bookkeeping."""


@dataclass(frozen=True, slots=True)
class Event:
    """One consumed record, decoded. ``raw`` is the undecoded value as it came off the wire."""

    key: bytes | None
    value: Any
    timestamp_ms: int
    topic: str
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...] = ()
    raw: bytes | None = None

    @property
    def tp(self) -> TopicPartitionKey:
        return (self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """An output record bound for a Kafka topic."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    partition: int | None = None
    """An explicit partition; None lets the partitioner choose from the key."""


@dataclass(frozen=True, slots=True)
class KafkaBatch:
    """Many output records bound for one Kafka topic, as parallel sequences: a batch
    processor's fast path at high rates (the Runner produces them in one loop, no object per
    record). ``headers`` is None (no headers) or one list of (name, value) pairs per record
    (a list: the client rejects tuples); partitions are chosen by the partitioner from the
    keys."""

    topic: str
    values: Sequence[bytes | None]
    keys: Sequence[bytes | None]
    headers: Sequence[list[tuple[str, bytes]]] | None = None

    def __len__(self) -> int:
        return len(self.values)


COORDINATE_COLUMNS = ("_topic", "_partition", "_offset", "_timestamp_ms", "_key", "_size_bytes")
"""Kafka coordinates appended to every batch table: ``_topic`` (string), ``_partition``
(int32), ``_offset`` and ``_timestamp_ms`` (int64), ``_key`` (binary, nullable) and
``_size_bytes`` (int32: the value's size on the wire). Event columns never start with ``_``."""


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """What a batch decoder made of ``n`` raw values: ``table`` holds one row per value that
    decoded, in input order, and ``rows[i]`` is the input index of table row ``i``;
    ``errors`` names every value that did not decode, as ``(input index, exception)``. Every
    input index is in exactly one of ``rows`` and ``errors``."""

    table: pa.Table
    rows: Sequence[int]
    errors: Sequence[tuple[int, Exception]] = ()


class BatchDecoder(Protocol):
    """Decodes a polled batch's values at once (natively, not per record in Python)."""

    def __call__(self, values: Sequence[bytes | None]) -> DecodedBatch: ...


class BatchProcessor(Protocol):
    """Pure logic on a whole batch: ``table`` has the decoded event columns plus
    :data:`COORDINATE_COLUMNS`. An exception from ``process_batch`` makes the Runner split the
    batch and retry the halves, down to single rows that are dead-lettered, so it must not
    change state before it raises. ``tick``/``pending_low_offsets``/``drop`` as
    :class:`Processor`."""

    def process_batch(self, table: pa.Table) -> Iterable[Any]:
        """Return 0..n outputs for the batch."""
        ...

    def tick(self, now_ms: int) -> Iterable[Any]: ...

    def pending_low_offsets(self) -> Mapping[TopicPartitionKey, int]: ...

    def drop(self, partitions: Collection[TopicPartitionKey]) -> None: ...


class Processor(Protocol):
    """Pure per-record logic. Exceptions from ``process`` dead-letter the record."""

    def process(self, event: Event) -> Iterable[Any]:
        """Return 0..n outputs for one event."""
        ...

    def tick(self, now_ms: int) -> Iterable[Any]:
        """Return outputs that time has closed (windows); called once per poll batch."""
        ...

    def pending_low_offsets(self) -> Mapping[TopicPartitionKey, int]:
        """Oldest offset per partition still held in open state (not yet emitted)."""
        ...

    def drop(self, partitions: Collection[TopicPartitionKey]) -> None:
        """Forget all state for these partitions (revoked, lost, or rewound for a re-read)."""
        ...


class Unavailable(RuntimeError):
    """Something decoding or processing needs is unreachable (a schema registry, say): not a
    bad record. The Runner rewinds to the committed offsets, pauses, and reads again later."""


class Sink(Protocol):
    """Buffers outputs and makes them durable on ``flush``. The Runner commits no offset at or
    above what :meth:`held` reports, and calls :meth:`release` for partitions it revoked, lost
    or rewound."""

    def add(self, item: Any, source: Event | None) -> None:
        """Buffer one output; ``source`` is the event it came from (None for ticks and for
        batch outputs, which carry their own coordinates)."""
        ...

    def should_flush(self, now_ms: int) -> bool:
        """True when the buffer is due (max records / bytes / age)."""
        ...

    def flush(self) -> None:
        """Make everything added so far durable on return, or raise (the buffer is kept)."""
        ...

    def discard(self) -> None:
        """Drop everything not yet flushed; the Runner then re-reads it from Kafka."""
        ...

    def held(self) -> Mapping[TopicPartitionKey, int]:
        """Oldest offset per partition the sink still holds back after a flush (not durable
        yet); the Runner commits nothing from there on."""
        ...

    def release(self, partitions: Collection[TopicPartitionKey]) -> None:
        """Forget everything about these partitions (revoked, lost, or rewound)."""
        ...

    def healthcheck(self) -> bool:
        """A startup check that the destination answers; logs and returns False otherwise
        (never raises: the daemon starts anyway and backpressures until it answers)."""
        ...

    def close(self) -> None:
        """Release clients; called once after the Runner stopped."""
        ...


class SinkBase:
    """Defaults for sinks that hold nothing back after a flush and own no clients."""

    def held(self) -> Mapping[TopicPartitionKey, int]:
        return {}

    def release(self, partitions: Collection[TopicPartitionKey]) -> None:
        return None

    def healthcheck(self) -> bool:
        return True

    def close(self) -> None:
        return None


class StatelessProcessor:
    """Base for processors that hold no open state: ``tick``/``pending_low_offsets``/``drop``
    are no-ops. Subclasses implement ``process``."""

    def process(self, event: Event) -> Iterable[Any]:
        raise NotImplementedError

    def tick(self, now_ms: int) -> Iterable[Any]:
        return ()

    def pending_low_offsets(self) -> Mapping[TopicPartitionKey, int]:
        return {}

    def drop(self, partitions: Collection[TopicPartitionKey]) -> None:
        return None
