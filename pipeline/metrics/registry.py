"""One daemon's metrics: the Runner's observer (it calls the hooks below at its consume, dead
letter, flush, commit and assignment points) and the Prometheus registry it fills.

Counters the Runner already keeps (:class:`~pipeline.intake.RunStats`) and the daemon's own
summary counters (:data:`~pipeline.metrics.names.EXTRAS`) are read at scrape time, so they
equal the daemon's summary exactly. The hooks also keep the :class:`LoopState` that /healthz
and /readyz judge (:mod:`pipeline.metrics.readiness`). Hooks run on the poll-loop thread; a
scrape runs on the server's thread and only reads.
"""

from __future__ import annotations

import json
import time
from collections import Counter as Tally
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.intake import RunStats
from pipeline.logs import get_logger, warnings_logged
from pipeline.metrics import names, readiness
from pipeline.metrics.config import MetricsConfig
from pipeline.producer import DeliveryError

log = get_logger("pipeline.metrics")

FLUSH_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass(slots=True)
class LoopState:
    """What the health endpoints judge; times are ``time.monotonic()`` seconds."""

    last_loop_s: float | None = None  # None: the loop has not turned yet
    stopped: bool = False
    assigned: int = 0
    last_good_flush_s: float | None = None
    flush_error: str | None = None  # the last cycle's failure; None once a cycle succeeds
    flush_failing_since_s: float | None = None
    kafka_error: str | None = None  # the consumer's last error, until the loop gets records


LabelledCounts = Mapping[str, Mapping[tuple[str, ...], float]]
"""Per metric name (a key of ``names.LABELLED``): label values → count."""


class DaemonMetrics:
    """The metrics of daemon ``daemon`` in consumer group ``group``. ``summary`` is the
    daemon's own summary (its counters named in EXTRAS are exported), ``labelled`` its
    labelled counters (names.LABELLED); :meth:`watch` gives the Runner's RunStats."""

    def __init__(self, daemon: str, group: str, *,
                 summary: Callable[[], dict[str, Any]] = dict,
                 labelled: Callable[[], LabelledCounts] = dict,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.daemon, self.group = daemon, group
        self.state = LoopState()
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock, self._summary, self._labelled = clock, summary, labelled
        self._stats = RunStats()
        r, d = self.registry, ["daemon"]
        self._consumed = Counter(names.CONSUMED, "Records taken from Kafka (re-reads count "
                                 "again).", [*d, "topic", "partition"], registry=r)
        self._dead = Counter(names.DEAD_LETTERS, "Records sent to the dead-letter topic.",
                             [*d, "reason"], registry=r)
        self._flush = Histogram(names.FLUSH_SECONDS, "Commit cycles (flush the sink, flush "
                                "the producer, commit offsets), successful or not.", d,
                                buckets=FLUSH_BUCKETS_S, registry=r)
        self._flush_failures = Counter(names.FLUSH_FAILURES, "Commit cycles that failed and "
                                       "rewound.", d, registry=r)
        self._delivery = Counter(names.DELIVERY_ERRORS, "Produced records that failed "
                                 "delivery.", d, registry=r)
        self._kafka_errors = Counter(names.KAFKA_ERRORS, "Errors the consumer reported.", d,
                                     registry=r)
        self._lag = Gauge(names.LAG, "Records behind the partition's end (librdkafka's "
                          "statistics).", [*d, "group", "topic", "partition"], registry=r)
        self._assigned = Gauge(names.ASSIGNED, "Partitions assigned to this member.", d,
                               registry=r)
        self._lag_labels: set[tuple[str, str]] = set()
        r.register(_SummaryCollector(self))

    def watch(self, stats: RunStats) -> None:
        """Export ``stats`` (the Runner's own counters) from now on."""
        self._stats = stats

    # -- hooks the Runner calls --------------------------------------------------------------

    def polled(self, msgs: Collection[Message]) -> None:
        """One turn of the poll loop; ``msgs`` are the records it took (counted)."""
        self.state.last_loop_s = self._clock()
        if not msgs:
            return
        self.state.kafka_error = None
        for (topic, partition), n in Tally((m.topic() or "", m.partition() or 0)
                                           for m in msgs).items():
            self._consumed.labels(self.daemon, topic, str(partition)).inc(n)

    def dead_lettered(self, exc: BaseException) -> None:
        """One record dead-lettered; the reason is the exception's type (as in the DLQ)."""
        self._dead.labels(self.daemon, type(exc).__name__).inc()

    def flush_failed(self, exc: BaseException) -> None:
        """The sink's flush or the outputs' delivery failed (once per attempt)."""
        self.state.flush_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, DeliveryError):
            self._delivery.labels(self.daemon).inc(max(1, len(exc.failures)))

    def cycle(self, duration_s: float, ok: bool) -> None:
        """A commit cycle ended after ``duration_s``; ``ok``: its outputs are durable."""
        self._flush.labels(self.daemon).observe(duration_s)
        now = self._clock()
        if ok:
            self.state.last_good_flush_s = now
            self.state.flush_error = self.state.flush_failing_since_s = None
            return
        self._flush_failures.labels(self.daemon).inc()
        if self.state.flush_failing_since_s is None:
            self.state.flush_failing_since_s = now

    def assigned(self, partitions: Collection[tuple[str, int]]) -> None:
        """The partitions this member owns now."""
        self.state.assigned = len(partitions)
        self._assigned.labels(self.daemon).set(len(partitions))

    def stopped(self) -> None:
        """The loop ended (the process is shutting down)."""
        self.state.stopped = True

    # -- health (pipeline.metrics.server.Observed) -------------------------------------------

    def liveness_problems(self, now_s: float, cfg: MetricsConfig) -> list[str]:
        """:func:`~pipeline.metrics.readiness.liveness_problems` of this daemon."""
        return readiness.liveness_problems(self.state, now_s, cfg)

    def readiness_problems(self, probes: Mapping[str, str | None], now_s: float,
                           cfg: MetricsConfig) -> list[str]:
        """:func:`~pipeline.metrics.readiness.readiness_problems` of this daemon."""
        return readiness.readiness_problems(self.state, probes, now_s, cfg)

    # -- librdkafka callbacks (consumer conf ``error_cb`` / ``stats_cb``) ---------------------

    def kafka_error(self, err: Any) -> None:
        """librdkafka's error callback (which replaces its own log line for the error)."""
        log.warning("kafka_error", daemon=self.daemon, error=str(err))
        self.state.kafka_error = str(err)
        self._kafka_errors.labels(self.daemon).inc()

    def kafka_stats(self, stats_json: str) -> None:
        """Set the lag gauge from librdkafka's statistics (partitions with a known lag): the
        records between this member's position and the last stable offset. Not librdkafka's
        ``consumer_lag``: a transactional daemon commits through its producer, so the consumer
        never learns its committed offset and that lag stays unknown or stale."""
        seen: set[tuple[str, str]] = set()
        for topic, t in json.loads(stats_json).get("topics", {}).items():
            for partition, p in t.get("partitions", {}).items():
                position, end = p.get("app_offset", -1), p.get("ls_offset", -1)
                lag = max(0, end - position) if position >= 0 and end >= 0 \
                    else p.get("consumer_lag", -1)
                if partition == "-1" or lag < 0:
                    continue
                self._lag.labels(self.daemon, self.group, topic, partition).set(lag)
                seen.add((topic, partition))
        for topic, partition in self._lag_labels - seen:
            self._lag.remove(self.daemon, self.group, topic, partition)
        self._lag_labels = seen


class _SummaryCollector(Collector):
    """The Runner's RunStats and the daemon's EXTRAS, read at scrape time."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m, s = self._m, self._m._stats
        for name, value, help_text in (
                (names.PROCESSED, s.processed, "Records processed (not dead-lettered)."),
                (names.OUTPUTS, s.outputs, "Outputs routed to Kafka or the sink."),
                (names.COMMITS, s.commits, "Offset commits."),
                (names.REWINDS, s.rewinds, "Rewinds to the committed offsets."),
                (names.LOG_WARNINGS, warnings_logged(), "Lines logged at warning or worse.")):
            yield _family(name, "counter", help_text, m.daemon, value)
        yield from self._extras()
        yield from self._labelled()

    def _extras(self) -> Iterator[Metric]:
        extras = names.EXTRAS.get(self._m.daemon, {})
        if not extras:
            return
        try:
            summary = self._m._summary()
        except RuntimeError as exc:  # a dict the loop thread resized mid-read: next scrape
            log.debug("summary_unreadable", error=str(exc))
            return
        for key, extra in extras.items():
            value = summary.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                yield _family(extra.name, extra.kind, extra.help, self._m.daemon, value)


    def _labelled(self) -> Iterator[Metric]:
        try:
            counts = {name: dict(c) for name, c in self._m._labelled().items()}
        except RuntimeError as exc:  # resized by the loop thread mid-read: next scrape
            log.debug("labelled_counts_unreadable", error=str(exc))
            return
        for name, by_values in counts.items():
            spec = names.LABELLED.get(name)
            if spec is None:
                continue
            labels, help_text = spec
            family = CounterMetricFamily(name.removesuffix("_total"), help_text,
                                         labels=["daemon", *labels])
            for values, count in by_values.items():
                if len(values) == len(labels):
                    family.add_metric([self._m.daemon, *values], count)
            yield family


def _family(name: str, kind: str, help_text: str, daemon: str, value: float) -> Metric:
    family: Metric
    if kind == "counter":
        family = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=["daemon"])
    else:
        family = GaugeMetricFamily(name, help_text, labels=["daemon"])
    family.add_metric([daemon], value)
    return family
