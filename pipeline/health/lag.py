"""Consumer lag per group and partition: measured on the cluster by :class:`LagProbe`, turned
into Health datums by :class:`LagTracker` (pure).

Lag in events is ``end - committed`` (the high watermark minus the group's committed offset, as
``kafka-consumer-groups`` reports it). Lag in seconds is ``now - timestamp`` of the record at
the committed offset: how old the oldest record the group has not consumed yet is; None when
the lag is 0 or no record could be read there (e.g. only transaction markers remain). A
partition the group never committed has no lag (its position is whatever
``auto.offset.reset`` makes it) and is not reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from pipeline.health.record import health_datum

LagKey = tuple[str, str, int]
"""(group, topic, partition)."""

PROBE_GROUP = "trailpipe-health-probe"
"""The ``group.id`` of the probe's own consumer: it only assigns and never commits, so the
group never exists on the cluster; it is excluded from discovery all the same."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One observation of a group on one partition."""

    group: str
    topic: str
    partition: int
    committed: int
    end: int
    lag_s: float | None = None

    @property
    def key(self) -> LagKey:
        return (self.group, self.topic, self.partition)

    @property
    def lag_events(self) -> int:
        return max(0, self.end - self.committed)

    @property
    def subject(self) -> str:
        return f"{self.group}/{self.topic}[{self.partition}]"


class LagTracker:
    """Turns lag observations into Health datums; remembers which partitions are lag_high.

    ``observe`` gives, per observation: a ``lag`` record when ``report_all``; a ``lag_high``
    record when the partition crosses either threshold (lag_events > ``threshold_events`` or
    lag_s > ``threshold_s``) and was not high; a ``lag_ok`` record when a high partition is back
    under both. A partition that is not observed keeps its state."""

    def __init__(self, *, threshold_events: int, threshold_s: float,
                 component: str = "aggregator") -> None:
        self._threshold_events, self._threshold_s = threshold_events, threshold_s
        self._component = component
        self._high: set[LagKey] = set()

    def is_high(self, lag: PartitionLag) -> bool:
        return (lag.lag_events > self._threshold_events
                or (lag.lag_s is not None and lag.lag_s > self._threshold_s))

    def observe(self, lags: Iterable[PartitionLag], *, now_ms: int,
                report_all: bool = False) -> list[dict[str, Any]]:
        out = []
        for lag in lags:
            high, was_high = self.is_high(lag), lag.key in self._high
            if report_all:
                out.append(self._datum(lag, "lag", "consumer lag", now_ms))
            if high and not was_high:
                self._high.add(lag.key)
                out.append(self._datum(lag, "lag_high", self._above(lag), now_ms))
            elif was_high and not high:
                self._high.discard(lag.key)
                out.append(self._datum(lag, "lag_ok", "consumer lag back under the "
                                       "thresholds", now_ms))
        return out

    def _above(self, lag: PartitionLag) -> str:
        age = "unknown" if lag.lag_s is None else f"{lag.lag_s:.0f} s"
        return (f"consumer group {lag.group} is {lag.lag_events} records ({age}) behind on "
                f"{lag.topic}[{lag.partition}]; thresholds {self._threshold_events} records, "
                f"{self._threshold_s:g} s")

    def _datum(self, lag: PartitionLag, status: str, message: str,
               now_ms: int) -> dict[str, Any]:
        metrics: dict[str, float] = {"lag_events": lag.lag_events,
                                     "committed_offset": lag.committed,
                                     "end_offset": lag.end}
        if lag.lag_s is not None:
            metrics["lag_s"] = lag.lag_s
        return health_datum(self._component, status, lag.subject, message, stage="lag",
                            metrics=metrics, at_ms=now_ms,
                            details={"group": lag.group, "topic": lag.topic,
                                     "partition": lag.partition})


class LagProbe:
    """Measures consumer lag on the cluster. ``groups`` empty: every group whose id starts with
    ``prefix``. ``consumer_conf`` builds the group-less consumer that reads record timestamps.
    Not thread-safe: one probe per thread. Raises KafkaException when the cluster does not
    answer (the monitor retries next interval)."""

    def __init__(self, admin: AdminClient, consumer_conf: Mapping[str, Any], *,
                 groups: Sequence[str], prefix: str, timeout_s: float = 5.0,
                 read_timeout_s: float = 2.0) -> None:
        self._admin, self._groups, self._prefix = admin, list(groups), prefix
        self._timeout_s, self._read_timeout_s = timeout_s, read_timeout_s
        # small fetches: the probe wants one record per partition, not the backlog
        self._consumer = Consumer({**consumer_conf, "max.partition.fetch.bytes": 65_536,
                                   "fetch.max.bytes": 1_048_576})

    def measure(self, now_ms: int) -> list[PartitionLag]:
        """Every committed partition of every watched group, with its lag (a partition whose
        topic no longer exists is left out)."""
        out: list[PartitionLag] = []
        for group in self.groups():
            committed = self._committed(group)
            ends = self._ends(list(committed))
            committed = {tp: off for tp, off in committed.items() if tp in ends}
            ages = self._ages({tp: off for tp, off in committed.items() if ends[tp] > off},
                              now_ms)
            out += [PartitionLag(group, t, p, off, ends[(t, p)], ages.get((t, p)))
                    for (t, p), off in sorted(committed.items())]
        return out

    def groups(self) -> list[str]:
        if self._groups:
            return self._groups
        listed = self._admin.list_consumer_groups(request_timeout=self._timeout_s)
        ids = (g.group_id for g in listed.result(timeout=self._timeout_s).valid)
        return sorted(g for g in ids if g.startswith(self._prefix) and g != PROBE_GROUP)

    def _committed(self, group: str) -> dict[tuple[str, int], int]:
        futures = self._admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=self._timeout_s)
        result = futures[group].result(timeout=self._timeout_s)
        return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or ()
                if tp.offset >= 0}

    def _ends(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if not tps:
            return {}
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = self._admin.list_offsets(
            {TopicPartition(t, p): latest for t, p in tps},
            request_timeout=self._timeout_s)
        ends = {}
        for tp, fut in futures.items():
            try:
                ends[(tp.topic, tp.partition)] = fut.result(timeout=self._timeout_s).offset
            except KafkaException as exc:
                if exc.args[0].retriable():
                    raise
                # a topic deleted since the group committed: that partition has no lag to report
        return ends

    def _ages(self, at: dict[tuple[str, int], int], now_ms: int) -> dict[tuple[str, int], float]:
        """Seconds since the timestamp of the record at each offset (read one record each)."""
        if not at:
            return {}
        self._consumer.assign([TopicPartition(t, p, off) for (t, p), off in at.items()])
        ages: dict[tuple[str, int], float] = {}
        deadline = time.monotonic() + self._read_timeout_s
        while len(ages) < len(at) and time.monotonic() < deadline:
            for msg in self._consumer.consume(len(at), 0.2):
                tp = (msg.topic() or "", msg.partition() or 0)
                if msg.error() is not None or tp in ages:
                    continue
                kind, ts_ms = msg.timestamp()
                if kind != 0 and ts_ms >= 0:  # 0 = TIMESTAMP_NOT_AVAILABLE
                    ages[tp] = max(0.0, (now_ms - ts_ms) / 1000)
                self._consumer.pause([TopicPartition(*tp)])
        self._consumer.unassign()
        return ages

    def close(self) -> None:
        self._consumer.close()
