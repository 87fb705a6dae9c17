"""The ``alert`` scenario's latency phase: produce-to-committed-alert time at a steady rate.

Fresh topics; the alerter is started, and once its group has partitions, WARMUP_S of traffic
at RATE_PER_S is produced and drained (the first hits of each hits partition restore its
state from the changelog: a once-per-start cost, not steady state). Then MEASURE_S more at the
same rate. Records are generated and encoded beforehand (event time advancing at RATE_PER_S,
20 accounts, an attack scenario every few hundred events so that hundreds of distinct alerts
open: an alert id opens once per rule, dedup key and window), then produced paced with the
producers' settings; each record's Kafka timestamp is its produce time.

A read_committed consumer on the alerts topic (a thread of this process) stamps every record
the moment its poll returns it. An alert opening (``update`` 0) carries the header
``trailpipe.produced_ms``, the Kafka timestamp of the event that opened it; latency =
seen - produced_ms, over the openings whose event was produced in the measured window.
Updates carry no such header (they coalesce many hits) and are not measured. Also recorded:
how long the alerter took to commit everything after the last record was produced
(``latency_catchup_s``: near a cycle when it keeps up) and its CPU time over the window's wall
time (``latency_alerter_cpu_share``: near 1 means it is CPU-bound).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench.alert_setup import (
    Alerter,
    Deliveries,
    alert_topics,
    check_flushed,
    create_topics,
    delete_topics,
    encoded,
    events_producer,
    generator,
    produce,
    spawn_alerter,
    stop_alerter,
    write_config,
)
from bench.alert_watch import wait_assigned, wait_drained
from bench.archive_drain import _proc_status, end_offsets
from bench.common import BenchContext, BenchError
from bench.results import ScenarioResult
from pipeline.rules.alert import decode_alert

RATE_PER_S = 5_000
WARMUP_S = 5.0
MEASURE_S = 30.0
LATENCY_ACCOUNTS = 20
LATENCY_SCENARIO_EVERY = 1_000
MIN_ALERTS = 200
TARGET_P99_MS = 1_000
HEADER = "trailpipe.produced_ms"
READER_IDLE_S = 2.0
TIMEOUT_S = 300.0


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of non-empty ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class AlertReader(threading.Thread):
    """Reads the alerts topic read_committed from the start until stopped and idle; keeps
    ``(seen_ms, produced_ms)`` of every opening that carries the header."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(name="alert-reader", daemon=True)
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"bench-alert-reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed", "enable.auto.commit": False,
            "fetch.wait.max.ms": 10, "log_level": 3})
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.stopping = threading.Event()
        self.openings: list[tuple[int, int]] = []
        self.records = 0

    def run(self) -> None:
        idle_since = time.monotonic()
        try:
            while not self.stopping.is_set() or time.monotonic() - idle_since < READER_IDLE_S:
                msg = self._consumer.poll(0.05)
                if msg is None:
                    continue
                seen_ms = time.time_ns() // 1_000_000
                idle_since = time.monotonic()
                if msg.error() is not None:
                    continue
                self.records += 1
                produced = dict(msg.headers() or []).get(HEADER)
                if produced and decode_alert(msg.value() or b"")["update"] == 0:
                    self.openings.append((seen_ms, int(produced)))
        finally:
            self._consumer.close()


def _prepared(seconds: float, rate_per_s: int) -> list[tuple[bytes, bytes]]:
    """One generated sequence (a generator repeats itself: warm-up and window must be two
    parts of one sequence, or the window would only update the warm-up's alerts)."""
    gen = generator(start_ms=time.time_ns() // 1_000_000, accounts=LATENCY_ACCOUNTS,
                    events_per_s=rate_per_s, scenario_every=LATENCY_SCENARIO_EVERY)
    return list(encoded(gen.records(int(seconds * rate_per_s))))


def produce_paced(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]],
                  rate_per_s: int) -> int:
    """Produce ``records`` at ``rate_per_s`` (each no more than ~1 ms late); the epoch ms at
    which the first one was produced."""
    producer, deliveries = events_producer(bootstrap, "bench-alert-paced"), Deliveries()
    start_s, first_ms = time.monotonic(), time.time_ns() // 1_000_000
    sent = 0
    while sent < len(records):
        due = min(len(records), int((time.monotonic() - start_s) * rate_per_s) + 1)
        for key, value in records[sent:due]:
            produce(producer, topic, key, value, deliveries)
        sent = max(sent, due)
        producer.poll(0)
        time.sleep(0.001)
    check_flushed(producer, deliveries, len(records))
    return first_ms


@dataclass(frozen=True, slots=True)
class Phase:
    first_ms: int  # epoch ms of the first record produced
    catchup_s: float  # from the last record acknowledged to everything committed
    wall_s: float  # from the first record produced to everything committed
    cpu_s: float | None  # the alerter's CPU time over wall_s


def _run_phase(ctx: BenchContext, alerter: Alerter, group: str, topics: dict[str, str],
               records: Sequence[tuple[bytes, bytes]], rate_per_s: int) -> Phase:
    """Produce paced, then wait until the alerter has committed everything it caused."""
    _, cpu0 = _proc_status(alerter.proc.pid)
    start = time.monotonic()
    first_ms = produce_paced(ctx.bootstrap, topics["events"], records, rate_per_s)
    produced = time.monotonic()
    ends = end_offsets(ctx.bootstrap, topics["events"])
    drain = wait_drained(alerter, ctx.bootstrap, group, topics, ends, TIMEOUT_S)
    done = alerter.started + drain.done_s
    cpu_s = None if cpu0 is None or drain.cpu_s is None else drain.cpu_s - cpu0
    return Phase(first_ms, done - produced, done - start, cpu_s)


def measure(ctx: BenchContext, log_dir: Path, sigma_dir: Path, *,
            rate_per_s: int = RATE_PER_S, measure_s: float = MEASURE_S) -> ScenarioResult:
    """Warm up, measure ``measure_s`` at ``rate_per_s``; p50/p99 of the openings' latency."""
    say: Callable[[str], None] = ctx.console.print
    tag = uuid.uuid4().hex[:8]
    topics, group = alert_topics(f"lat-{tag}"), f"bench-alert-lat-{tag}"
    say(f"  latency: preparing {WARMUP_S + measure_s:.0f}s of events at {rate_per_s:,}/s")
    records = _prepared(WARMUP_S + measure_s, rate_per_s)
    cut = int(WARMUP_S * rate_per_s)
    try:
        create_topics(ctx.bootstrap, topics)
        config = log_dir / "latency.toml"
        write_config(config, ctx.bootstrap, topics, group, sigma_dir)
        alerter = spawn_alerter(config, log_dir, "latency")
        reader = AlertReader(ctx.bootstrap, topics["alerts"])
        try:
            wait_assigned(alerter, ctx.bootstrap, group, topics["events"], TIMEOUT_S)
            reader.start()
            _run_phase(ctx, alerter, group, topics, records[:cut], rate_per_s)
            say(f"  warmed up; producing {measure_s:.0f}s at {rate_per_s:,}/s")
            window = _run_phase(ctx, alerter, group, topics, records[cut:], rate_per_s)
        finally:
            reader.stopping.set()
            stop_alerter(alerter)
        reader.join(60)
    finally:
        delete_topics(ctx.bootstrap, topics.values(), [group])
    return _latency_result(reader, window, rate_per_s, len(records) - cut)


def _latency_result(reader: AlertReader, window: Phase, rate_per_s: int,
                    events: int) -> ScenarioResult:
    latencies = [seen - produced for seen, produced in reader.openings
                 if produced >= window.first_ms]
    if len(latencies) < MIN_ALERTS:
        raise BenchError(f"only {len(latencies)} alert openings in the measured window "
                         f"(need {MIN_ALERTS}); {reader.records} alert records read")
    p99 = percentile(latencies, 99)
    return {
        "latency_events_per_s": rate_per_s, "latency_events": events,
        "latency_accounts": LATENCY_ACCOUNTS, "latency_scenario_every": LATENCY_SCENARIO_EVERY,
        "latency_alerts": len(latencies), "p50_ms": percentile(latencies, 50), "p99_ms": p99,
        "max_ms": max(latencies), "latency_catchup_s": round(window.catchup_s, 2),
        # the alerter's share of a core while producing and catching up (1.0: CPU-bound)
        "latency_alerter_cpu_share": (round(window.cpu_s / window.wall_s, 2)
                                      if window.cpu_s is not None else None),
        "target_p99_ms": TARGET_P99_MS, "met_p99_ms": p99 <= TARGET_P99_MS,
    }
