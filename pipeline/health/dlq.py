"""Dead-letter rate per source: :class:`DlqProbe` reads the dead-letter topic's new records since
its last look, :func:`count_sources` counts them by source and :class:`DlqRateTracker` (pure)
turns the counts into ``dlq_rate_high`` / ``dlq_rate_ok`` Health datums.

A dead letter's source is its ``x-source`` header (the producer source, e.g. ``cloudtrail-dir``),
else its ``x-source-topic`` (the topic a consumer read it from), else ``unknown`` (see
:mod:`pipeline.deadletter`). The rate is the count over the wall-clock time between two looks,
per minute.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from pipeline.health.record import health_datum

HeaderValue = str | bytes | None
Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]
"""A record's headers as confluent-kafka gives them (a list of pairs, or a dict)."""
SOURCE_HEADERS = ("x-source", "x-source-topic")
"""Headers naming a dead letter's source, in order of preference."""


def source_of(headers: Headers | None) -> str:
    """The source a dead letter is counted under (see the module docstring). When a header
    occurs more than once (a dead letter of a dead letter), the last one is the newest."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    found = {name: value for name, value in pairs if name in SOURCE_HEADERS and value}
    for name in SOURCE_HEADERS:
        value = found.get(name)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if value:
            return value
    return "unknown"


def count_sources(headers: Iterable[Headers | None]) -> Counter[str]:
    """Dead letters per source, given each dead letter's headers."""
    return Counter(source_of(h) for h in headers)


class DlqRateTracker:
    """Remembers which sources are above ``threshold_per_min``. ``observe`` gives a
    ``dlq_rate_high`` datum for a source whose rate crossed the threshold and a ``dlq_rate_ok``
    datum for a high source now at or under it (a source with no new dead letters is at 0)."""

    def __init__(self, *, threshold_per_min: float, component: str = "aggregator") -> None:
        self._threshold, self._component = threshold_per_min, component
        self._high: set[str] = set()

    def observe(self, counts: Mapping[str, int], *, elapsed_ms: int,
                now_ms: int) -> list[dict[str, Any]]:
        """Raises ValueError when ``elapsed_ms`` is not positive."""
        if elapsed_ms <= 0:
            raise ValueError(f"elapsed_ms must be positive, not {elapsed_ms}")
        out = []
        for source in sorted(set(counts) | self._high):
            count = counts.get(source, 0)
            rate = count * 60_000 / elapsed_ms
            metrics = {"dead_letters": count, "dead_letters_per_min": rate,
                       "interval_ms": elapsed_ms, "threshold_per_min": self._threshold}
            if rate > self._threshold and source not in self._high:
                self._high.add(source)
                message = (f"{count} dead letters from {source} in {elapsed_ms / 1000:g} s "
                           f"({rate:.1f}/min, threshold {self._threshold:g}/min)")
                out.append(self._datum("dlq_rate_high", source, message, metrics, now_ms))
            elif rate <= self._threshold and source in self._high:
                self._high.discard(source)
                out.append(self._datum("dlq_rate_ok", source, f"dead letters from {source} "
                                       f"back to {rate:.1f}/min", metrics, now_ms))
        return out

    def _datum(self, status: str, source: str, message: str, metrics: Mapping[str, float],
               now_ms: int) -> dict[str, Any]:
        return health_datum(self._component, status, source, message, stage="dlq",
                            metrics=metrics, at_ms=now_ms, details={"source": source})


class DlqProbe:
    """Reads the dead-letter topic's records added since the last :meth:`look` with a group-less
    consumer (positions kept in memory). The first look (and any partition seen for the first
    time) starts at the end, so it counts nothing. Not thread-safe. Raises KafkaException when
    the cluster does not answer (the positions are unchanged; the next look reads on)."""

    def __init__(self, consumer_conf: Mapping[str, Any], topic: str, *,
                 timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> None:
        self._topic, self._timeout_s, self._read_timeout_s = topic, timeout_s, read_timeout_s
        self._consumer = Consumer(dict(consumer_conf))
        self._positions: dict[int, int] = {}

    def look(self) -> Counter[str]:
        """Dead letters per source since the previous look."""
        ends = self._ends()
        start = {p: self._positions.get(p, end) for p, end in ends.items()}
        todo = {p for p, end in ends.items() if start[p] < end}
        counts: Counter[str] = Counter()
        if todo:
            self._consumer.assign([TopicPartition(self._topic, p, start[p]) for p in todo])
            deadline = time.monotonic() + self._read_timeout_s
            while todo and time.monotonic() < deadline:
                msgs = [m for m in self._consumer.consume(1000, 0.2) if m.error() is None]
                counts.update(source_of(m.headers()) for m in msgs)
                for m in msgs:
                    start[m.partition() or 0] = (m.offset() or 0) + 1
                start.update({p: self._position(p, start[p]) for p in todo})
                todo = {p for p in todo if start[p] < ends[p]}
            self._consumer.unassign()
        self._positions = start
        return counts

    def _ends(self) -> dict[int, int]:
        meta = self._consumer.list_topics(self._topic, timeout=self._timeout_s)
        partitions = meta.topics[self._topic].partitions if self._topic in meta.topics else {}
        return {p: self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, p), timeout=self._timeout_s, cached=False)[1]
                for p in partitions}

    def _position(self, partition: int, read_to: int) -> int:
        """Where reading ``partition`` has got to: past what was delivered, and past any
        transaction markers or aborted records the consumer skipped."""
        (tp,) = self._consumer.position([TopicPartition(self._topic, partition)])
        return max(read_to, tp.offset)

    def close(self) -> None:
        self._consumer.close()

