"""Scenario ``consume``: the consumer Runner's batch mode against Kafka's ConsumerPerformance.

* **fill**: the ``archive`` scenario's topic (:func:`bench.archive_setup.fill`): ``max(--records,
  500,000)`` generated CloudTrail events published by a Publisher configured as ``trailpipe
  produce`` configures it (single-object Avro, zstd), to a fresh 6-partition topic.
* **ours**: :class:`pipeline.runner.Runner` **in this process**, in batch mode: each poll of
  ``batch_size`` messages decoded at once by :class:`pipeline.events.batch.AvroBatchDecoder`
  into a pyarrow Table, the Kafka coordinates appended as columns, handed to a BatchProcessor
  that discards it (no sink), the daemons' consumer settings (read_committed, offsets committed
  by the Runner). Each drain uses a fresh group; tried once per ``BATCH_SIZES``, then with the
  best batch size and bigger fetches (``BIG_FETCH``, in the consumer conf's extra; the best
  drain only if ``FETCH_GAIN_TO_MATTER`` faster).
* **peer**: Apache Kafka's ConsumerPerformance (Java client) on the same topic, own group.

A drain is timed from the first partition assignment to the moment the processor holds the last
row (decoded), as ConsumerPerformance's ``fetch.*`` figures exclude its group join:
``events_per_s`` = decoded rows/s of the best drain. ``cpu_us_per_event`` is the CPU time of
the whole process (every thread, librdkafka's fetch and zstd decompression included) over the
same interval, per event; ``loop_cpu_us_per_event`` that of the Runner's thread alone, whose
inverse (``loop_cpu_bound_events_per_s``) is what the loop could sustain on a core of its own
(a figure that holds on a busy machine, where the wall-clock rate does not).
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, TopicPartition

from bench.archive_drain import _r, end_offsets
from bench.archive_setup import MIB, MIN_EVENTS, PARTITIONS, fill
from bench.common import BenchContext, BenchError, Scenario
from bench.fill import create_topic, delete_bench_leftovers
from bench.java_perf import consumer_perf
from bench.results import ScenarioResult
from pipeline.config import ProducerConfig, RunnerConfig
from pipeline.events.batch import AvroBatchDecoder
from pipeline.kafka import consumer_config, producer_config
from pipeline.model import StatelessProcessor
from pipeline.runner import Runner

BATCH_SIZES = (1_000, 5_000, 10_000, 20_000)
# librdkafka's defaults: 50 MiB, 1 MiB, 64 MiB.
BIG_FETCH = {"fetch.max.bytes": str(100 * MIB), "max.partition.fetch.bytes": str(8 * MIB),
             "queued.max.messages.kbytes": str(256 * 1024)}
# The bigger fetches count as the best drain only if they are this much faster (beyond noise).
FETCH_GAIN_TO_MATTER = 1.05
IDLE_EXIT_S = 30.0
JAVA_TIMEOUT_S = 180.0
TARGET_EVENTS_PER_S = 150_000
TARGET_RATIO_VS_CONSUMER_PERF = 0.4


@dataclass(frozen=True, slots=True)
class Clocks:
    """Wall clock, CPU time of the whole process, CPU time of the calling (the loop's) thread."""

    wall: float
    cpu: float
    loop_cpu: float

    @classmethod
    def now(cls) -> Clocks:
        return cls(time.perf_counter(), time.process_time(), time.thread_time())


class DiscardProcessor(StatelessProcessor):
    """Drops every table; notes when the last of ``expected`` rows arrived (the clock stop)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.rows = 0
        self.done: Clocks | None = None

    def process_batch(self, table: pa.Table) -> Iterable[Any]:
        self.rows += table.num_rows
        if self.done is None and self.rows >= self.expected:
            self.done = Clocks.now()
        return []


class TimedRunner(Runner):
    """The Runner, noting its first partition assignment (the clock start)."""

    assigned: Clocks | None = None

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.assigned is None:
            self.assigned = Clocks.now()
        super()._on_assign(consumer, partitions)


@dataclass(frozen=True, slots=True)
class Drain:
    batch_size: int
    fetch: str
    rows: int
    elapsed_s: float
    cpu_s: float
    loop_cpu_s: float  # the Runner's thread alone (the rest: librdkafka's threads)
    per_record: int  # values the decoder had to decode one by one (expected: 0)

    @property
    def events_per_s(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0


def drain_runner(bootstrap: str, topic: str, dlq: str, group: str, expected: int,
                 batch_size: int, fetch: Mapping[str, str]) -> Drain:
    """Drain ``topic`` in group ``group`` with a batch-mode Runner; raises BenchError unless
    exactly ``expected`` rows were decoded and none dead-lettered."""
    base = {"bootstrap.servers": bootstrap}
    processor = DiscardProcessor(expected)
    decoder = AvroBatchDecoder()
    runner = TimedRunner(
        consumer_conf=consumer_config(base, group, dict(fetch), read_committed=True),
        # the Runner's (idle) producer warns while a fresh broker loads its coordinator
        producer_conf=producer_config({**base, "log_level": 3}, {}),
        topics=[topic], processor=processor, sink=None,
        config=RunnerConfig(batch_size=batch_size), dlq_topic=dlq, decode_batch=decoder)
    stats = runner.run(max_messages=expected, idle_exit_s=IDLE_EXIT_S)
    assigned = runner.assigned
    del runner  # its idle producer lives in a reference cycle: free it before the next drain
    gc.collect()
    if assigned is None or processor.done is None or stats.dead_lettered \
            or processor.rows != expected:
        raise BenchError(f"Runner (batch {batch_size}) decoded {processor.rows} rows, "
                         f"dead-lettered {stats.dead_lettered}; expected {expected}")
    label = ",".join(f"{k}={v}" for k, v in fetch.items()) or "librdkafka defaults"
    done = processor.done
    return Drain(batch_size, label, processor.rows, done.wall - assigned.wall,
                 done.cpu - assigned.cpu, done.loop_cpu - assigned.loop_cpu, decoder.per_record)


def _measure(ctx: BenchContext, topic: str, dlq: str, groups: dict[str, str]) -> ScenarioResult:
    say = ctx.console.print
    events = max(ctx.records, MIN_EVENTS)
    create_topic(ctx.bootstrap, topic, PARTITIONS)
    create_topic(ctx.bootstrap, dlq, 1)
    say(f"[bold]consume[/]: generating and publishing {events:,} events")
    filled = fill(ctx.bootstrap, topic, dlq, events)
    if sum(end_offsets(ctx.bootstrap, topic).values()) != events:
        raise BenchError(f"topic {topic} does not hold exactly {events} records")
    say(f"  filled in {filled.elapsed_s:.1f}s; draining with the Runner (batch mode)")

    drains: list[Drain] = []
    for size in BATCH_SIZES:
        drains.append(drain_runner(ctx.bootstrap, topic, dlq, groups[f"batch{size}"], events,
                                   size, {}))
        say(f"  batch_size {size:,}: {drains[-1].events_per_s:,.0f} events/s")
    by_size = max(drains, key=lambda d: d.events_per_s)
    big = drain_runner(ctx.bootstrap, topic, dlq, groups["bigfetch"], events,
                       by_size.batch_size, BIG_FETCH)
    say(f"  batch_size {big.batch_size:,} + bigger fetches: {big.events_per_s:,.0f} events/s; "
        "draining with ConsumerPerformance")
    best = big if big.events_per_s > by_size.events_per_s * FETCH_GAIN_TO_MATTER else by_size
    java = consumer_perf(ctx.repo_root, ctx.bootstrap, topic, groups["java"], events,
                         timeout_s=JAVA_TIMEOUT_S)
    ratio = best.events_per_s / java.records_per_s if java.records_per_s else None
    return {
        "events": events,
        "partitions": PARTITIONS,
        "compression": ProducerConfig().compression,
        "avro_bytes_per_event": _r(filled.avro_bytes / events),
        "fill_events_per_s": _r(events / filled.elapsed_s),
        "runner": "in-process, batch mode, AvroBatchDecoder, BatchProcessor discarding the "
                  "table, no sink, read_committed",
        # the best drain
        "events_per_s": _r(best.events_per_s),
        "drain_s": _r(best.elapsed_s, 3),
        "batch_size": best.batch_size,
        "fetch_settings": best.fetch,
        "cpu_s": _r(best.cpu_s, 2),
        "cpu_us_per_event": _r(best.cpu_s / best.rows * 1e6),
        "loop_cpu_us_per_event": _r(best.loop_cpu_s / best.rows * 1e6),
        # what the loop's thread alone could sustain on a core of its own
        "loop_cpu_bound_events_per_s": _r(best.rows / best.loop_cpu_s if best.loop_cpu_s
                                          else None),
        "decoded_per_record": best.per_record,
        # every drain
        "batch_sizes_tried": ",".join(str(size) for size in BATCH_SIZES),
        **{f"events_per_s_batch_{d.batch_size}": _r(d.events_per_s) for d in drains},
        **{f"cpu_us_per_event_batch_{d.batch_size}": _r(d.cpu_s / d.rows * 1e6)
           for d in drains},
        "big_fetch_settings": big.fetch,
        "events_per_s_big_fetch": _r(big.events_per_s),
        "cpu_us_per_event_big_fetch": _r(big.cpu_s / big.rows * 1e6),
        # ConsumerPerformance
        "consumer_perf_records_per_s": _r(java.records_per_s),
        "consumer_perf_elapsed_s": _r(java.elapsed_s, 3),
        "consumer_perf_error": java.error,
        "ratio_vs_consumer_perf": None if ratio is None else round(ratio, 3),
        # targets
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_ratio_vs_consumer_perf": TARGET_RATIO_VS_CONSUMER_PERF,
        "meets_targets": best.events_per_s >= TARGET_EVENTS_PER_S and ratio is not None
                         and ratio >= TARGET_RATIO_VS_CONSUMER_PERF,
    }


def run(ctx: BenchContext) -> ScenarioResult:
    """Fill a fresh topic, drain it with the Runner and ConsumerPerformance, then delete the
    topics and groups."""
    sfx = uuid.uuid4().hex[:8]
    topic, dlq = f"bench.consume.events.{sfx}", f"bench.consume.dlq.{sfx}"
    labels = [f"batch{size}" for size in BATCH_SIZES] + ["bigfetch", "java"]
    groups = {label: f"bench-consume-{label}-{sfx}" for label in labels}
    try:
        return _measure(ctx, topic, dlq, groups)
    finally:
        delete_bench_leftovers(ctx.bootstrap, topic, list(groups.values()))
        delete_bench_leftovers(ctx.bootstrap, dlq, [])


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f} events/s"


def summary(r: ScenarioResult) -> str:
    java = _rate(r["consumer_perf_records_per_s"])
    if r.get("consumer_perf_error"):
        java += f" ({r['consumer_perf_error']})"
    tried = ", ".join(f"{size}: {_rate(r.get(f'events_per_s_batch_{size}'))}"
                      for size in str(r["batch_sizes_tried"]).split(","))
    best = (f"batch_size {r['batch_size']}, {r['fetch_settings']}; {r['drain_s']}s, "
            f"{r['cpu_us_per_event']} us CPU/event")
    return " | ".join([
        f"consume: {r['events']:,} events",
        f"Runner batch mode {_rate(r['events_per_s'])} ({best})",
        f"tried {tried}; bigger fetches {_rate(r['events_per_s_big_fetch'])}",
        f"ConsumerPerformance {java} = ratio {r['ratio_vs_consumer_perf']}",
        f"meets targets: {r['meets_targets']}",
    ])


SCENARIO = Scenario(run=run, summary=summary,
                    description="Runner batch mode (native Avro decode) vs ConsumerPerformance")
