"""The aggregator's BatchProcessor: windows, Insights and silent sources per events partition.

Each batch is split by partition; a partition's :class:`~pipeline.aggregates.partition.
PartitionState` counts it and returns the windows it closed (``Aggregate`` records for the
compacted aggregates topic, and rows for the lake sink), corrections for late events, and the
Insights events of the minutes it closed (CloudTrail-shaped ApiCallEvents for the insights
topic). Before each commit, :meth:`before_commit` writes every state change to the changelog
topic (partition p's state in changelog partition p); the Runner commits outputs, changelog and
offsets in one transaction, so after a crash the restored state and the re-read records give
exactly the outputs the aborted transaction would have.

A partition's state is restored from the changelog the first time it is seen after a start,
an assignment or a rewind (:meth:`drop` forgets it). An unexpected error in the counting is
not a poison record (the columns are typed by the decoder): it is reported as
:class:`~pipeline.model.Unavailable`, so the Runner aborts the transaction and re-reads.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from consumers.aggregator.silence import PREFIX as SOURCE_PREFIX
from consumers.aggregator.silence import SilentSources
from pipeline.aggregates.cells import aggregate_key
from pipeline.aggregates.columns import aggregation_columns
from pipeline.aggregates.partition import MINUTE_MS, Insights, PartitionState
from pipeline.aggregates.table import AGGREGATE
from pipeline.changelog import state_record
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import make_key
from pipeline.events.records import encode_record
from pipeline.events.wire import encode
from pipeline.health.record import health_record
from pipeline.logs import get_logger
from pipeline.model import KafkaRecord, TopicPartitionKey, Unavailable

log = get_logger("consumers.aggregator")

Restore = Callable[[int], Iterable[tuple[str, bytes | None]]]
RECENT_MINUTES = 10
"""Closed minutes whose top API calls are kept for :meth:`AggregatorProcessor.top_calls`."""


@dataclass(frozen=True, slots=True)
class Topics:
    events: str
    aggregates: str
    insights: str
    health: str
    state: str


@dataclass(frozen=True, slots=True)
class AggregateRow:
    """One emitted aggregate (its ``Aggregate`` datum), for the lake sink."""

    datum: dict[str, Any]

    @property
    def partition(self) -> int:
        return int(self.datum["partition"])

    @property
    def trigger_offset(self) -> int:
        return int(self.datum["trigger_offset"])


@dataclass(frozen=True, slots=True)
class Settings:
    grace_ms: int
    max_values: int
    silent_after_ms: int
    lake: bool


class AggregatorProcessor:
    """See the module docstring. ``make_insights()`` builds one Insights engine per partition
    (None: Insights off); ``drain_health()`` returns the health monitor's queued records."""

    def __init__(self, topics: Topics, restore: Restore, settings: Settings, *,
                 make_insights: Callable[[], Insights] | None,
                 stats_of: Callable[[dict[str, Any]], Any] = dict,
                 drain_health: Callable[[], list[KafkaRecord]] = list,
                 clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self._topics, self._restore, self._settings = topics, restore, settings
        self._make_insights, self._stats_of = make_insights, stats_of
        self._drain_health, self._clock = drain_health, clock
        self._started_ms = clock()
        self._states: dict[int, PartitionState] = {}
        self._sources: dict[int, SilentSources] = {}
        self._ingest_id = f"{socket.gethostname()}-{os.getpid()}"
        self._recent: dict[int, Counter[str]] = {}  # calls per eventName per closed minute
        self._owned: set[int] = set()
        self.counters = {"events": 0, "windows": 0, "corrections": 0, "late_events": 0,
                         "insights": 0, "health": 0, "restored_records": 0}

    def process_batch(self, table: pa.Table) -> Iterator[Any]:
        try:
            outputs = list(self._process(aggregation_columns(table)))
        except Unavailable:
            raise
        except Exception as exc:  # see the module docstring: not the records' fault
            log.exception("aggregator_failed")
            self._states.clear()
            self._sources.clear()
            raise Unavailable(f"aggregation failed: {exc}") from exc
        self.counters["events"] += table.num_rows
        return iter(outputs)

    def _process(self, cols: pa.Table) -> Iterator[Any]:
        now_ms = self._clock()
        for partition in sorted(pc.unique(cols.column("partition")).to_pylist()):
            rows = cols.filter(pc.equal(cols.column("partition"), partition))
            state = self._state(partition)
            closed = state.add(rows)
            for datum in closed.aggregates:
                yield from self._aggregate(datum)
            for event in closed.insights:
                yield self._insight(event, now_ms)
            sources = set(zip(rows.column("account").to_pylist(),
                              rows.column("region").to_pylist(), strict=True))
            # Now, not the batch start: a restore above may have taken seconds.
            for datum in self._sources[partition].seen(sources, self._clock()):
                yield self._health(datum)

    def _aggregate(self, datum: dict[str, Any]) -> Iterator[Any]:
        self.counters["corrections" if datum["correction"] else "windows"] += 1
        if datum["window_size"] == "1m" and datum["correction"]:
            self.counters["late_events"] += datum["count"]  # each late event is in one
        elif datum["window_size"] == "1m":
            self._count_recent(datum["window_start_ms"], datum["event_name"], datum["count"])
        yield KafkaRecord(self._topics.aggregates, encode_record(AGGREGATE, datum),
                          aggregate_key(datum).encode())
        if self._settings.lake:
            yield AggregateRow(datum)

    def _count_recent(self, minute_ms: int, event_name: str, count: int) -> None:
        """Calls per eventName of the last :data:`RECENT_MINUTES` minutes (bounded)."""
        self._recent.setdefault(minute_ms, Counter())[event_name] += count
        if len(self._recent) > RECENT_MINUTES:  # partitions close minutes in any order
            del self._recent[min(self._recent)]

    def _insight(self, event: dict[str, Any], now_ms: int) -> KafkaRecord:
        self.counters["insights"] += 1
        state = event.get("insightDetails", {}).get("state")
        log.info("insight", state=state, account=event.get("recipientAccountId"),
                 region=event.get("awsRegion"),
                 event_name=event.get("insightDetails", {}).get("eventName"),
                 insight_type=event.get("insightDetails", {}).get("insightType"))
        datum = to_avro(event, ingest=IngestMeta(now_ms, "aggregator", self._ingest_id))
        return KafkaRecord(self._topics.insights, encode(datum),
                           make_key(event.get("recipientAccountId"), event.get("awsRegion")))

    def _health(self, datum: dict[str, Any]) -> KafkaRecord:
        self.counters["health"] += 1
        log.warning("aggregator_health", status=datum["status"], subject=datum["subject"],
                    message=datum["message"])
        return health_record(self._topics.health, datum)

    def _state(self, partition: int) -> PartitionState:
        state = self._states.get(partition)
        if state is not None:
            return state
        s = self._settings
        state = PartitionState(partition, grace_ms=s.grace_ms, max_values=s.max_values,
                               insights=self._make_insights() if self._make_insights else None,
                               stats_of=self._stats_of, clock=self._clock)
        sources = SilentSources(s.silent_after_ms, self._clock())
        restored = 0
        for key, value in self._restore(partition):
            restored += 1
            if key.startswith(SOURCE_PREFIX + "|"):
                if value is not None:
                    sources.restore(key, value)
            else:
                state.restore(key, value)
        state.restored()
        list(state.changes())  # restoring is not a change to write back
        list(sources.changes())
        self.counters["restored_records"] += restored
        log.info("aggregator_state_restored", partition=partition, records=restored,
                 watermark_ms=state.watermark_ms)
        self._states[partition], self._sources[partition] = state, sources
        return state

    def before_commit(self) -> Iterator[KafkaRecord]:
        """The changelog records of every state change since the last commit (the Runner
        calls this before it flushes and commits)."""
        for partition, state in self._states.items():
            changes = [*state.changes(), *self._sources[partition].changes()]
            for key, value in changes:
                yield state_record(self._topics.state, partition, key, value)

    def assigned(self, partitions: Collection[TopicPartitionKey]) -> None:
        """The events partitions this member owns (the Runner tells it after every change)."""
        self._owned = {p for t, p in partitions if t == self._topics.events}

    def tick(self, now_ms: int) -> Iterable[Any]:
        """Silent-source checks and the health monitor's records (lag, dead letters). An owned
        partition whose state is not loaded (after a start or a rewind, while it sends
        nothing) is restored here, so its silent sources are still watched."""
        for partition in sorted(self._owned - self._states.keys()):
            try:
                self._state(partition)
            except Unavailable as exc:  # the changelog cannot be read now: next tick
                log.warning("aggregator_restore_failed", partition=partition, error=str(exc))
        out = [self._health(d) for sources in self._sources.values()
               for d in sources.check(now_ms)]
        return out + self._drain_health()

    def top_calls(self, n: int) -> tuple[int | None, list[tuple[str, int]]]:
        """(minute start, the ``n`` eventNames called most in it) for the newest minute every
        partition held has closed ((None, []) before there is one): the status line's view."""
        marks = [s.watermark_ms for s in self._states.values()]
        known = [m for m in marks if m is not None]
        if not known or len(known) < len(marks):
            return None, []
        complete = [m for m in self._recent if m + MINUTE_MS <= min(known)]
        if not complete:
            return None, []
        minute = max(complete)
        return minute, self._recent[minute].most_common(n)

    def stats(self) -> dict[str, Any]:
        open_windows = sum(len(w.open_starts) for s in self._states.values()
                           for w in s.windows.values())
        watermarks = [s.watermark_ms for s in self._states.values() if s.watermark_ms is not None]
        return {**self.counters, "open_windows": open_windows,
                "watermark_ms": min(watermarks) if watermarks else None,
                "silent_sources": sum(src.silent for ss in self._sources.values()
                                      for src in ss.sources.values())}

    def pending_low_offsets(self) -> Mapping[TopicPartitionKey, int]:
        return {}  # state is in the changelog, written with the offsets: nothing held back

    def drop(self, partitions: Collection[TopicPartitionKey]) -> None:
        """Forget the state of revoked or rewound events partitions (restored on next use)."""
        for topic, partition in partitions:
            if topic == self._topics.events:
                self._states.pop(partition, None)
                self._sources.pop(partition, None)
