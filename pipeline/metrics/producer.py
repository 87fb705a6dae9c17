"""A producer daemon's metrics and health (``trailpipe produce SOURCE --metrics-port``).

The Publisher's counters (:meth:`producers.publisher.Publisher.counts`) are read at scrape time,
so /metrics equals the JSON summary the producer prints: ``read`` → :data:`READ`, ``produced``
→ ``trailpipe_records_produced_total{topic}`` and ``trailpipe_outputs_total`` (what the
supervisor's dashboard shows as out/s), ``dead_lettered`` →
``trailpipe_dead_letters_total{reason}``, ``failed`` →
``trailpipe_producer_delivery_errors_total{reason}`` (librdkafka's error name), ``bytes_in`` →
:data:`READ_BYTES`, ``bytes_out`` → :data:`PRODUCED_BYTES`, ``pending`` → :data:`PENDING`.
Every metric has the ``daemon`` label :func:`daemon_label` (``producer-<source>``).

Alive (/healthz): the produce loop served delivery reports within ``stall_after_s`` (every
source polls at least once a tick; the HTTP collector's poll thread every 50 ms). Ready
(/readyz): alive, the latest delivery report was not an error, and the Kafka probe found the
events topic's metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.logs import get_logger, warnings_logged
from pipeline.metrics import names
from pipeline.metrics.config import MetricsConfig
from pipeline.metrics.readiness import probe_problems

log = get_logger("pipeline.metrics.producer")

READ, READ_BYTES = names.READ, names.READ_BYTES
PRODUCED_BYTES, PENDING = names.PRODUCED_BYTES, names.PENDING

PRODUCER_NAMES = frozenset({READ, READ_BYTES, PRODUCED_BYTES, PENDING, names.PRODUCED,
                            names.OUTPUTS, names.DEAD_LETTERS, names.DELIVERY_ERRORS,
                            names.KAFKA_ERRORS, names.LOG_WARNINGS})
"""Every metric name a producer exports."""


def daemon_label(source: str) -> str:
    """The ``daemon`` label of the producer of ``source`` (``producer-generator``, ...)."""
    return f"producer-{source}"


@dataclass(frozen=True, slots=True)
class ProducerCounts:
    """One consistent reading of a Publisher."""

    stats: Mapping[str, int] = field(default_factory=dict)
    """``PublishStats.as_dict()``: read, produced, dead_lettered, failed, bytes_in,
    bytes_out, pending (a missing one counts 0)."""
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    """Confirmed dead letters by reason (the error type written in the dead letter)."""
    delivery_errors: Mapping[str, int] = field(default_factory=dict)
    """Failed deliveries by librdkafka error name (``_MSG_TIMED_OUT``, ...)."""
    last_turn_s: float | None = None
    """``time.monotonic()`` of the produce loop's latest poll or flush; None before any."""
    last_delivery_error: str | None = None
    """The latest delivery report's error; None when it succeeded (or none came yet)."""


def families(counts: ProducerCounts, daemon: str, topic: str) -> list[Metric]:
    """The metric families of ``counts`` (``topic``: the events topic)."""
    s = {key: counts.stats.get(key, 0) for key in ("read", "produced", "bytes_in",
                                                    "bytes_out", "pending")}
    out: list[Metric] = []

    def counter(name: str, help_text: str, by: Mapping[tuple[str, ...], float],
                labels: tuple[str, ...] = ()) -> None:
        family = CounterMetricFamily(name.removesuffix("_total"), help_text,
                                     labels=["daemon", *labels])
        for values, value in by.items():
            family.add_metric([daemon, *values], value)
        out.append(family)

    counter(READ, "Records taken from the source (events and bad input).", {(): s["read"]})
    counter(READ_BYTES, "Bytes of the records taken from the source.", {(): s["bytes_in"]})
    counter(names.PRODUCED, "Events Kafka confirmed.", {(topic,): s["produced"]}, ("topic",))
    counter(names.OUTPUTS, "Events Kafka confirmed (as trailpipe_records_produced_total).",
            {(): s["produced"]})
    counter(PRODUCED_BYTES, "Bytes of the events Kafka confirmed (values).",
            {(topic,): s["bytes_out"]}, ("topic",))
    counter(names.DEAD_LETTERS, "Bad records whose dead letter Kafka confirmed.",
            {(r,): n for r, n in counts.dead_letters.items()}, ("reason",))
    counter(names.DELIVERY_ERRORS, "Records (events or dead letters) Kafka failed to "
            "deliver.", {(r,): n for r, n in counts.delivery_errors.items()}, ("reason",))
    pending = GaugeMetricFamily(PENDING, "Records handed to Kafka, not yet confirmed or "
                                "failed.", labels=["daemon"])
    pending.add_metric([daemon], s["pending"])
    out.append(pending)
    return out


class ProducerMetrics:
    """The metrics of producer ``daemon`` writing events to ``topic``; :meth:`watch` gives the
    Publisher's counts. Satisfies :class:`pipeline.metrics.server.Observed`."""

    def __init__(self, daemon: str, topic: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.daemon, self.topic = daemon, topic
        self.registry = CollectorRegistry(auto_describe=True)
        self._counts: Callable[[], ProducerCounts] = ProducerCounts
        self._clock = clock
        self._kafka_errors = Counter(names.KAFKA_ERRORS, "Errors the producer reported.",
                                     ["daemon"], registry=self.registry)
        self._last_kafka_error: str | None = None
        self.registry.register(_CountsCollector(self))

    def watch(self, counts: Callable[[], ProducerCounts]) -> None:
        """Export ``counts()`` (read at each scrape and health check) from now on."""
        self._counts = counts

    def counts(self) -> ProducerCounts:
        return self._counts()

    def kafka_error(self, err: Any) -> None:
        """librdkafka's error callback (producer conf ``error_cb``): counted, remembered for
        /readyz, and logged when it differs from the previous one (a broker that stays down
        reports the same error at every reconnect)."""
        if str(err) != self._last_kafka_error:
            log.warning("kafka_error", daemon=self.daemon, error=str(err))
        self._last_kafka_error = str(err)
        self._kafka_errors.labels(self.daemon).inc()

    def liveness_problems(self, now_s: float, cfg: MetricsConfig) -> list[str]:
        """Why the producer is not alive (empty: alive)."""
        last = self._counts().last_turn_s
        if last is None:
            return ["the produce loop has not started"]
        idle_s = now_s - last
        if idle_s > cfg.stall_after_s:
            return [f"the produce loop has not turned for {idle_s:.0f}s "
                    f"(stall_after_s {cfg.stall_after_s:g})"]
        return []

    def readiness_problems(self, probes: Mapping[str, str | None], now_s: float,
                           cfg: MetricsConfig) -> list[str]:
        """Why the producer is not ready (empty: ready); ``probes`` as for a consumer."""
        problems = self.liveness_problems(now_s, cfg)
        failing = self._counts().last_delivery_error
        if failing is not None:
            problems.append(f"deliveries failing: {failing}")
        return problems + probe_problems(probes, self._last_kafka_error, "producer")


class _CountsCollector(Collector):
    def __init__(self, metrics: ProducerMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        yield from families(self._m.counts(), self._m.daemon, self._m.topic)
        warnings = CounterMetricFamily(names.LOG_WARNINGS.removesuffix("_total"),
                                       "Lines logged at warning or worse.", labels=["daemon"])
        warnings.add_metric([self._m.daemon], warnings_logged())
        yield warnings
