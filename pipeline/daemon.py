"""One daemon shape: a Runner + a health check + close + a summary, built by one builder.

A daemon module provides a *wiring* function ``wire(ctx) -> Parts``: its pure logic (a
Processor or BatchProcessor, or none), its Sink (if it writes outside Kafka), which topics and
group it reads, and how it reports. :func:`build_daemon` turns that into a :class:`Daemon`,
applying the consumer and producer settings the same way for every daemon (security, the
murmur2 partitioner, session and poll timeouts, ``[kafka] extra``, read_committed), so no
daemon copies another's wiring. ``trailpipe consume <name>`` looks the wiring up by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka.admin import AdminClient

from pipeline.config import Config
from pipeline.events.batch import AvroBatchDecoder
from pipeline.events.schemas import default_registry
from pipeline.intake import BatchDecoders, RunStats
from pipeline.kafka import base_client_config, consumer_config, producer_config
from pipeline.logs import get_logger
from pipeline.metrics.registry import DaemonMetrics, LabelledCounts
from pipeline.model import BatchProcessor, Processor, Sink
from pipeline.runner import Runner

if TYPE_CHECKING:
    from pipeline.lake.store import ObjectStore

log = get_logger("pipeline.daemon")


def events_decoder(cfg: Config) -> AvroBatchDecoder:
    """The native decoder for the events topic: writers from our ``schemas/`` by fingerprint,
    plus the Confluent wire format through ``[schema_registry] url`` when it is set; every
    writer resolved to the newest ApiCallEvent version, so no writer's field is dropped (v1.1's
    ``labels`` land in ``_labels``)."""
    reader = default_registry().newest()
    sr = cfg.schema_registry
    if not sr.url:
        return AvroBatchDecoder(reader=reader)
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from pipeline.events.confluent import registry_client_conf

    return AvroBatchDecoder(reader=reader,
                            confluent=SchemaRegistryClient.new_client(registry_client_conf(sr)))


@dataclass(frozen=True, slots=True)
class Context:
    """What a wiring function gets: the validated config, the bootstrap servers, the client
    settings every Kafka client shares, and test hooks (``hooks``, by name)."""

    cfg: Config
    bootstrap: str
    hooks: dict[str, Any] = field(default_factory=dict)

    @property
    def kafka_base(self) -> dict[str, Any]:
        return base_client_config(self.cfg.kafka, self.bootstrap)

    def producer_conf(self, **overrides: str) -> dict[str, Any]:
        """An idempotent producer's settings (for a daemon's own side producers)."""
        return producer_config(self.kafka_base, {**overrides, **self.cfg.kafka.extra})

    def lake(self, daemon: str) -> ObjectStore:
        """The ``store`` hook, else the lake of ``[storage]`` after a probe write
        (:func:`pipeline.startup.probe_lake_writes`: DestinationRefused, a ValueError, when it
        denies ``daemon``; call it before starting anything that would need stopping)."""
        from pipeline.lake.store import open_lake
        from pipeline.startup import probe_lake_writes

        hooked: ObjectStore | None = self.hooks.get("store")
        if hooked is not None:
            return hooked
        store = open_lake(self.cfg.storage)
        probe_lake_writes(store, daemon)
        return store


@dataclass(slots=True)
class Parts:
    """A daemon's logic and outputs, as its wiring function returns them.

    ``decode_batch`` selects batch mode (columnar; one decoder, or one per topic); otherwise
    each record's raw value is the event's value. ``transactional_id`` makes the outputs, dead
    letters and consumed offsets of each cycle one Kafka transaction (exactly once for
    read_committed readers); it must be unique per running instance. ``output_topics`` must
    exist besides the input and dead-letter topics (checked at start); ``summary`` adds the
    daemon's own counters to the run's; ``close`` stops what the wiring started (threads).
    """

    topics: list[str]
    group: str
    processor: Processor | BatchProcessor | None
    sink: Sink | None
    decode_batch: BatchDecoders | None = None
    commit_interval_ms: int | None = None
    poll_timeout_ms: int | None = None
    transactional_id: str | None = None
    output_topics: list[str] = field(default_factory=list)
    summary: Callable[[], dict[str, Any]] = lambda: {}
    close: Callable[[], None] = lambda: None


Wiring = Callable[[Context], Parts]


@dataclass(slots=True)
class Daemon:
    """A built daemon. :meth:`run` polls until stopped and always closes what it opened."""

    name: str
    runner: Runner
    parts: Parts
    dlq_topic: str
    kafka_base: dict[str, Any]

    def startup_problems(self, timeout_s: float = 10.0) -> list[str]:
        """Why starting is pointless: the topics the cluster lacks or hides from this
        principal (:func:`pipeline.startup.topic_problems`). Raises KafkaException when the
        cluster cannot be reached."""
        from pipeline.startup import topic_problems

        names = [*self.parts.topics, self.dlq_topic, *self.parts.output_topics]
        return topic_problems(AdminClient(self.kafka_base), names, timeout_s)

    def healthcheck(self) -> bool:
        """The sink's startup check (True without a sink)."""
        return self.parts.sink.healthcheck() if self.parts.sink is not None else True

    def run(self, *, idle_exit_s: float | None = None,
            max_messages: int | None = None) -> RunStats:
        try:
            return self.runner.run(idle_exit_s=idle_exit_s, max_messages=max_messages)
        finally:
            self.close()

    def close(self) -> None:
        self.parts.close()
        if self.parts.sink is not None:
            self.parts.sink.close()

    def summary(self, stats: RunStats) -> dict[str, Any]:
        """The JSON summary printed on exit: the run's counters and the daemon's own."""
        return {"daemon": self.name, "consumed": stats.consumed, "processed": stats.processed,
                "dead_lettered": stats.dead_lettered, "outputs": stats.outputs,
                "commits": stats.commits, "rewinds": stats.rewinds, **self.parts.summary()}


def build_daemon(name: str, wiring: Wiring, ctx: Context) -> Daemon:
    """Wire daemon ``name`` and put it on a Runner with the shared client settings. Nothing
    connects until :meth:`Daemon.run`. Raises ValueError for settings the wiring rejects."""
    parts = wiring(ctx)
    cfg = ctx.cfg
    extra = dict(cfg.kafka.extra)
    # A daemon that polls more often than usual also wants its fetches answered that soon.
    fetch = {} if parts.poll_timeout_ms is None else {
        "fetch.wait.max.ms": str(parts.poll_timeout_ms)}
    consumer_extra = {"session.timeout.ms": str(cfg.runner.session_timeout_ms),
                      "max.poll.interval.ms": str(cfg.runner.max_poll_interval_ms), **fetch,
                      **extra}
    overrides = {"commit_interval_ms": parts.commit_interval_ms,
                 "poll_timeout_ms": parts.poll_timeout_ms}
    runner_cfg = cfg.runner.model_copy(
        update={k: v for k, v in overrides.items() if v is not None})
    metrics = DaemonMetrics(name, parts.group, summary=parts.summary,
                            labelled=_labelled_counts(parts))
    runner = Runner(
        consumer_conf=_observed(consumer_config(ctx.kafka_base, parts.group, consumer_extra,
                                                read_committed=True),
                                metrics, cfg.metrics.lag_interval_ms),
        producer_conf=producer_config(ctx.kafka_base, extra),
        topics=parts.topics, processor=parts.processor, sink=parts.sink, config=runner_cfg,
        dlq_topic=cfg.topics.dlq, decode_batch=parts.decode_batch,
        transactional_id=parts.transactional_id, metrics=metrics)
    log.info("daemon_built", daemon=name, group=parts.group, topics=parts.topics,
             batch=parts.decode_batch is not None, transactional=parts.transactional_id)
    return Daemon(name, runner, parts, cfg.topics.dlq, ctx.kafka_base)


def _labelled_counts(parts: Parts) -> Callable[[], LabelledCounts]:
    """The optional ``labelled_counts()`` of the processor and the sink, merged."""
    sources = [f for f in (getattr(parts.processor, "labelled_counts", None),
                           getattr(parts.sink, "labelled_counts", None)) if f is not None]

    def merged() -> LabelledCounts:
        return {name: counts for source in sources for name, counts in source().items()}

    return merged


def _observed(conf: dict[str, Any], metrics: DaemonMetrics, lag_interval_ms: int
              ) -> dict[str, Any]:
    """The consumer's settings with its errors and statistics (the lag) reported to
    ``metrics``; a ``statistics.interval.ms`` from ``[kafka] extra`` wins."""
    return {"statistics.interval.ms": lag_interval_ms, **conf,
            "error_cb": metrics.kafka_error, "stats_cb": metrics.kafka_stats}


@dataclass(frozen=True, slots=True)
class Registered:
    """A daemon ``trailpipe consume NAME`` can run: the module holding its ``wire``, the config
    section holding its ``group``, and the one-line help."""

    module: str
    section: str
    help: str

    def wiring(self) -> Wiring:
        wire: Wiring = importlib.import_module(self.module).wire
        return wire


DAEMONS: dict[str, Registered] = {
    "archiver": Registered(
        "consumers.archiver.daemon", "archiver",
        "Archive the events topic into the lake as zstd Parquet (Hive layout by event time), "
        "exactly once; a notice per object on the deliveries topic, failures on the health "
        "topic."),
    "alerter": Registered(
        "consumers.alerter.daemon", "alerter",
        "Sigma and native rules over the events topic; alerts (and their updates) to the alerts "
        "topic exactly once, in Kafka transactions with the offsets and the window state."),
    "aggregator": Registered(
        "consumers.aggregator.daemon", "aggregator",
        "1-minute and 1-hour windows of API calls by account, region, API, outcome and "
        "identity type (exact, by event time) to the aggregates topic and the lake; "
        "self-hosted CloudTrail Insights to the insights topic; silent sources, consumer lag "
        "and dead-letter rates to the health topic. Exactly once, in Kafka transactions."),
    "digester": Registered(
        "consumers.digester", "digest",
        "Delivery notices in, one signed, chained digest per hour out (run exactly one per "
        "lake, on a one-partition deliveries topic)."),
    "notifier": Registered(
        "consumers.notifier.daemon", "notifier",
        "Fan alerts out to the notifier's routes (webhook, SNS, syslog, Kafka topics), "
        "at least once; undeliverable alerts to the DLQ."),
    "mirror": Registered(
        "consumers.mirror.daemon", "mirror",
        "Mirror the events topic as CloudTrail's own JSON (one record per message, same keys "
        "and partitions) to the events_json topic, the alerts to alerts_json, and serve every "
        "SIEM's filtered/redacted view; exactly once, in Kafka transactions."),
    "forward-syslog": Registered(
        "consumers.forwarder.syslog", "forward_syslog",
        "Forward a JSON topic (the mirror or a SIEM view) to a syslog receiver: RFC 5424 over "
        "TCP, TLS or UDP, as CloudTrail JSON or CEF; offsets committed after the send."),
    "forward-hec": Registered(
        "consumers.forwarder.hec", "forward_hec",
        "Forward a JSON topic to Splunk's HTTP Event Collector in batches; offsets committed "
        "only after indexer acknowledgement."),
}
"""Every consumer daemon, by name. Modules are imported only when their daemon is built."""


def build_registered(name: str, ctx: Context) -> Daemon:
    """Build the registered daemon ``name`` (KeyError if there is none)."""
    return build_daemon(name, DAEMONS[name].wiring(), ctx)
