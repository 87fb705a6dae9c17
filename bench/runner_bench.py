"""Scenario ``runner``: what the one poll loop costs over the bare Python client.

One fresh 6-partition topic is filled once, then drained three times, each by its own group:

* **raw**: a confluent-kafka Consumer, ``consume(num_messages=1000)`` batches, an error check per
  record, one synchronous commit at the end: the physical limit of the Python client;
* **runner**: :class:`pipeline.runner.Runner` with a no-op stateless processor and an in-memory
  sink that only counts, flushing every 10,000 records (so committing once per cycle);
* **java**: Apache Kafka's ConsumerPerformance, for scale (null plus the error if it fails).

The Python drains are timed from the first record handed to the application to the end (final
commit and close included), so the group join is excluded, as in Java's ``fetch.*`` figures.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer

from bench.common import BenchContext, BenchError, Scenario
from bench.fill import create_topic, delete_bench_leftovers, fill_topic
from bench.java_perf import consumer_perf
from bench.results import ScenarioResult
from pipeline.config import RunnerConfig, TopicsConfig
from pipeline.kafka import consumer_config, producer_config
from pipeline.model import Event, StatelessProcessor
from pipeline.runner import Runner

PARTITIONS = 6
SINK_FLUSH_RECORDS = 10_000
RAW_BATCH = 1_000
DRAIN_TIMEOUT_S = 120.0
# The Runner's (idle) idempotent producer warns while a fresh broker loads its coordinator.
_QUIET = {"log_level": 3}


@dataclass(frozen=True, slots=True)
class Drain:
    records: int
    elapsed_s: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


class NoOpProcessor(StatelessProcessor):
    """Passes every event through unchanged, so the sink sees one output per record."""

    def process(self, event: Event) -> Iterable[Any]:
        return (event,)


class CountingSink:
    """Counts; ``flush`` is instant. Notes when the first record arrived (the clock start)."""

    def __init__(self, flush_every: int = SINK_FLUSH_RECORDS) -> None:
        self.flush_every = flush_every
        self.buffered = 0
        self.flushed = 0
        self.flushes = 0
        self.first_add_s: float | None = None

    def add(self, item: Any, source: Event | None) -> None:
        if self.first_add_s is None:
            self.first_add_s = time.perf_counter()
        self.buffered += 1

    def should_flush(self, now_ms: int) -> bool:
        return self.buffered >= self.flush_every

    def flush(self) -> None:
        self.flushed += self.buffered
        self.buffered = 0
        self.flushes += 1

    def discard(self) -> None:
        self.buffered = 0


def _consumer_conf(bootstrap: str, group: str) -> dict[str, Any]:
    return consumer_config({"bootstrap.servers": bootstrap}, group, {}, read_committed=False)


def drain_raw(bootstrap: str, topic: str, group: str, expected: int) -> Drain:
    """The peer: bare consume() batches; librdkafka stores offsets, one commit at the end."""
    conf = _consumer_conf(bootstrap, group)
    conf["enable.auto.offset.store"] = True
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    count, start = 0, None
    try:
        while count < expected:
            if time.monotonic() > deadline:
                raise BenchError(f"raw consumer got {count}/{expected} in {DRAIN_TIMEOUT_S}s")
            msgs = consumer.consume(num_messages=RAW_BATCH, timeout=1.0)
            if msgs and start is None:
                start = time.perf_counter()
            for msg in msgs:
                if msg.error() is None:
                    count += 1
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert start is not None  # count == expected > 0 implies a batch arrived
    return Drain(count, time.perf_counter() - start)


def drain_runner(bootstrap: str, topic: str, group: str, expected: int) -> Drain:
    """The same drain through the real Runner (decode = identity, DLQ never hit)."""
    sink = CountingSink()
    runner = Runner(consumer_conf=_consumer_conf(bootstrap, group),
                    producer_conf=producer_config(_QUIET | {"bootstrap.servers": bootstrap}, {}),
                    topics=[topic],
                    processor=NoOpProcessor(), sink=sink, config=RunnerConfig(),
                    dlq_topic=TopicsConfig().dlq)
    stats = runner.run(max_messages=expected, idle_exit_s=30.0)
    end = time.perf_counter()
    del runner  # its idle producer lives in a reference cycle: free it before the broker stops
    gc.collect()
    if sink.first_add_s is None or stats.processed != expected or sink.flushed != expected:
        raise BenchError(f"runner processed {stats.processed}, sink flushed {sink.flushed}, "
                         f"dead-lettered {stats.dead_lettered}; expected {expected}")
    return Drain(sink.flushed, end - sink.first_add_s)


def _measure(ctx: BenchContext, topic: str, groups: dict[str, str]) -> ScenarioResult:
    say = ctx.console.print
    say(f"[bold]runner[/]: filling {topic} ({ctx.records:,} x {ctx.record_bytes:,} B)")
    create_topic(ctx.bootstrap, topic, PARTITIONS)
    fill = fill_topic(ctx.bootstrap, topic, PARTITIONS, ctx.records, ctx.record_bytes,
                      ctx.console)
    say(f"  filled in {fill.elapsed_s:.1f}s; draining: raw consumer")
    raw = drain_raw(ctx.bootstrap, topic, groups["raw"], ctx.records)
    say(f"  raw {raw.records_per_s:,.0f} rec/s; draining: Runner")
    run = drain_runner(ctx.bootstrap, topic, groups["runner"], ctx.records)
    say(f"  Runner {run.records_per_s:,.0f} rec/s; draining: Java ConsumerPerformance")
    java = consumer_perf(ctx.repo_root, ctx.bootstrap, topic, groups["java"], ctx.records)
    return {
        "records": ctx.records,
        "record_bytes": ctx.record_bytes,
        "partitions": PARTITIONS,
        "fill_records_per_s": round(ctx.records / fill.elapsed_s, 1),
        "fill_elapsed_s": round(fill.elapsed_s, 3),
        "raw_consumer_records_per_s": round(raw.records_per_s, 1),
        "raw_consumer_elapsed_s": round(raw.elapsed_s, 3),
        "runner_records_per_s": round(run.records_per_s, 1),
        "runner_elapsed_s": round(run.elapsed_s, 3),
        "ratio_runner_vs_raw": round(run.records_per_s / raw.records_per_s, 3),
        "java_consumer_perf_records_per_s": (None if java.records_per_s is None
                                             else round(java.records_per_s, 1)),
        "java_consumer_perf_elapsed_s": (None if java.elapsed_s is None
                                         else round(java.elapsed_s, 3)),
        "java_consumer_perf_error": java.error,
    }


def run(ctx: BenchContext) -> ScenarioResult:
    """Fill a fresh topic, drain it three ways, delete the topic and groups afterwards."""
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench.runner.{suffix}"
    groups = {name: f"bench-runner-{name}-{suffix}" for name in ("raw", "runner", "java")}
    try:
        return _measure(ctx, topic, groups)
    finally:
        delete_bench_leftovers(ctx.bootstrap, topic, list(groups.values()))


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f} rec/s"


def summary(r: ScenarioResult) -> str:
    java = _rate(r.get("java_consumer_perf_records_per_s"))
    if r.get("java_consumer_perf_error"):
        java += f" ({r['java_consumer_perf_error']})"
    return (f"runner: {r['records']:,} x {r['record_bytes']:,} B | "
            f"raw {_rate(r['raw_consumer_records_per_s'])} ({r['raw_consumer_elapsed_s']}s) | "
            f"Runner {_rate(r['runner_records_per_s'])} ({r['runner_elapsed_s']}s) "
            f"= {r['ratio_runner_vs_raw']}x raw | Java ConsumerPerformance {java}")


SCENARIO = Scenario(run=run, summary=summary,
                    description="Runner vs raw confluent-kafka vs Java ConsumerPerformance")
