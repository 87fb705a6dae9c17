"""The alerter's BatchProcessor: both stages, one transaction per Runner cycle.

Stage 1 (events and insights topics): rules over each batch → Hits, produced to the hits topic
keyed by ``target + key`` (the repartition step: a window's hits meet in one partition whichever
account or region they came from); health records become hits of the built-in health rule. Stage
2 (hits topic): one :class:`~pipeline.rules.state.stage.Stage` per hits partition turns hits
into alerts; its state changes go to the changelog. Hits, alerts, state changes, health records
and the consumed offsets are all outputs of the Runner's transaction, so a crash aborts them
together and the re-read reproduces them exactly.

A hits partition's Stage is restored from the changelog the first time the partition is seen
after an assignment, a rewind or a start (``drop`` forgets it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from consumers.alerter.health import HEALTH_RULE, health_hits
from consumers.alerter.hits import hit_record, parse_hit
from consumers.alerter.match import BatchMatcher
from pipeline.changelog import state_record
from pipeline.health.record import health_datum, health_record
from pipeline.logs import get_logger
from pipeline.metrics import names
from pipeline.model import KafkaRecord, TopicPartitionKey
from pipeline.rules.alert import alert_record, encode_alert
from pipeline.rules.model import AlertDraft
from pipeline.rules.ruleset import RuleSet
from pipeline.rules.state.stage import Stage

log = get_logger("consumers.alerter")

Restore = Callable[[int], Iterable[tuple[str, bytes | None]]]
PRODUCED_HEADER = "trailpipe.produced_ms"
ALERTS_BY_LABEL = names.ALERTS  # a key of pipeline.metrics.names.LABELLED


@dataclass(frozen=True, slots=True)
class Topics:
    events: str
    insights: str
    hits: str
    alerts: str
    state: str
    health: str


@dataclass(slots=True)
class Counters:
    events: int = 0
    hits: int = 0
    alerts: int = 0
    updates: int = 0
    suppressed: int = 0
    restored_keys: int = 0


class AlerterProcessor:
    """See the module docstring. ``restore(p)`` yields the changelog of hits partition ``p``."""

    def __init__(self, rules: RuleSet, topics: Topics, restore: Restore, *, grace_ms: int,
                 max_keys: int, sample_size: int,
                 clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self._rules, self._topics, self._restore = rules, topics, restore
        self._matcher = BatchMatcher(rules)
        self._stage_args = {"grace_ms": grace_ms, "max_keys": max_keys,
                            "sample_size": sample_size}
        self._metas = {rid: r.meta for rid, r in rules.rules.items()}
        self._metas[HEALTH_RULE.id] = HEALTH_RULE
        self._stages: dict[int, Stage] = {}
        self._clock = clock
        self.counters = Counters()
        self._new_alerts: Counter[tuple[str, ...]] = Counter()  # by (severity, rule id)
        self._reported_errors: Counter[str] = Counter()
        self._reported_evictions: dict[int, int] = {}

    def process_batch(self, table: pa.Table) -> Iterator[KafkaRecord]:
        topic = table.column("_topic")[0].as_py() if table.num_rows else None
        if topic in (self._topics.events, self._topics.insights):
            self.counters.events += table.num_rows
            for hit in self._matcher.hits(table):
                yield hit_record(hit, self._topics.hits)
            yield from self._rule_health()
        elif topic == self._topics.hits:
            yield from self._stage_two(table)
        elif topic == self._topics.health:
            for hit in health_hits(table.column("value").to_pylist(),
                                   table.column("_partition").to_pylist(),
                                   table.column("_offset").to_pylist(),
                                   table.column("_timestamp_ms").to_pylist(), topic):
                yield hit_record(hit, self._topics.hits)

    def _stage_two(self, table: pa.Table) -> Iterator[KafkaRecord]:
        # Parse every hit before touching state: a bad one raises here, and the Runner's
        # bisection re-runs the halves on unchanged state.
        hits = [parse_hit(v) for v in table.column("value").to_pylist()]
        partitions = table.column("_partition").to_pylist()
        touched: dict[int, Stage] = {}
        for hit, partition in zip(hits, partitions, strict=True):
            self.counters.hits += 1
            stage = touched.get(partition) or self._stage(partition)
            touched[partition] = stage
            for draft in stage.observe(hit):
                yield from self._emit(draft, hit.produced_ms)
        for partition, stage in touched.items():
            for draft in stage.flush_updates():
                yield from self._emit(draft, 0)
            for key, state in stage.changes().items():
                yield state_record(self._topics.state, partition, key, state)
            yield from self._eviction_health(partition, stage)

    def _stage(self, partition: int) -> Stage:
        stage = self._stages.get(partition)
        if stage is None:
            stage = Stage(self._metas, self._rules.correlations, **self._stage_args)
            restored = 0
            for key, value in self._restore(partition):
                if value is not None:
                    stage.restore(key, value)
                    restored += 1
            stage.changes()  # restoring is not a change to write back
            self.counters.restored_keys += restored
            log.info("alerter_state_restored", partition=partition, records=restored)
            self._stages[partition] = stage
        return stage

    def _emit(self, draft: AlertDraft, produced_ms: int) -> Iterator[KafkaRecord]:
        for chained in self._rules.chained(draft):
            yield hit_record(chained, self._topics.hits)
        builtin = draft.rule_id == HEALTH_RULE.id
        if not builtin and not self._rules.alerts_alone(draft.rule_id):
            self.counters.suppressed += 1
            return
        meta = HEALTH_RULE if builtin else self._rules.meta(draft.rule_id)
        record = alert_record(draft, tags=meta.tags, rule_source=meta.source,
                              created_ms=self._clock())
        headers = ((PRODUCED_HEADER, str(produced_ms).encode()),) if produced_ms else ()
        if draft.update:
            self.counters.updates += 1
        else:
            self.counters.alerts += 1
            self._new_alerts[(draft.severity, draft.rule_id)] += 1
        yield KafkaRecord(self._topics.alerts, encode_alert(record), draft.alert_id.encode(),
                          headers)

    def _health(self, status: str, subject: str, message: str, *, metrics: dict[str, float],
                details: dict[str, Any]) -> KafkaRecord:
        """An Avro Health record keyed ``alerter|<subject>`` (in the Runner's transaction)."""
        datum = health_datum("alerter", status, subject, message, metrics=metrics,
                             details=details, at_ms=self._clock())
        log.warning("alerter_health", **datum)
        return health_record(self._topics.health, datum)

    def _rule_health(self) -> Iterator[KafkaRecord]:
        """A health record for each rule that raised since the last report."""
        for rule_id, count in self._rules.errors.items():
            new = count - self._reported_errors[rule_id]
            if new > 0:
                self._reported_errors[rule_id] = count
                yield self._health("rule_failing", rule_id,
                                   f"rule {rule_id} raised {new} times since the last report",
                                   metrics={"errors": new, "errors_total": count},
                                   details={"rule_id": rule_id})

    def _eviction_health(self, partition: int, stage: Stage) -> Iterator[KafkaRecord]:
        evicted = stage.stats().get("evicted", 0)
        if evicted > self._reported_evictions.get(partition, 0):
            self._reported_evictions[partition] = evicted
            yield self._health("state_cap_reached", f"state|{partition}",
                               f"hits partition {partition} reached its state cap; the oldest "
                               "windows are evicted", metrics={"evicted_total": evicted},
                               details={"partition": partition})

    def stats(self) -> dict[str, Any]:
        """Counters for the summary and metrics."""
        state: Counter[str] = Counter()
        for stage in self._stages.values():
            state.update(stage.stats())
        return {**asdict(self.counters), "rule_errors": sum(self._rules.errors.values()),
                "state": dict(state)}

    def labelled_counts(self) -> dict[str, dict[tuple[str, ...], int]]:
        """``trailpipe_alerts_total`` by (severity, rule id): the NEW alerts emitted (an
        alert's opening, ``update == 0``; its updates and the suppressed alerts of rules that
        only feed correlations are not counted), so the values sum to the summary's
        ``alerts``. A copy (one C-level dict copy: safe from the metrics server's thread)."""
        return {ALERTS_BY_LABEL: dict(self._new_alerts)}

    def tick(self, now_ms: int) -> Iterable[Any]:
        return ()

    def pending_low_offsets(self) -> Mapping[TopicPartitionKey, int]:
        return {}  # state is in the changelog, written with the offsets: nothing held back

    def drop(self, partitions: Collection[TopicPartitionKey]) -> None:
        """Forget the Stages of revoked or rewound hits partitions (restored on next use)."""
        for topic, partition in partitions:
            if topic == self._topics.hits:
                self._stages.pop(partition, None)
