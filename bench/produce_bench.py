"""Scenario ``produce``: the producer daemon's path against Kafka's own ProducerPerformance.

* **encode**: :func:`~pipeline.events.mapping.to_avro` + :func:`~pipeline.events.wire.encode`
  alone over the corpus records (cycled), per CPU second of this process (so per core);
* **publish**: one :class:`~producers.publisher.Publisher`, configured as ``trailpipe produce``
  configures it (``[producer]`` defaults: acks=all, idempotence, zstd, linger, batch), publishes
  ``max(--records, 500,000)`` corpus records (cycled) to a fresh topic, polling every 1,000
  records as ``cloudtrail-dir`` does. Timed from the first ``publish`` to the end of ``flush``,
  so every event is acknowledged by the broker. JSON parsing is not included: the records are
  parsed once up front, as a source hands them over (``json_parse_events_per_s_per_core`` says
  what parsing would add);
* **publish, workers 2**: the same with mapping + encoding in an
  :class:`~producers.pool.EncodePool` of 2 processes (``Publisher.publish_many``, as
  ``cloudtrail-dir --workers 2``), to another fresh topic; ``events_per_s_workers_2``;
* **cloudtrail-dir**: what ``trailpipe produce cloudtrail-dir --workers 1`` does end to end:
  the corpus records (cycled) written as ``{"Records": [...]}`` ``.json.gz`` delivery files of
  :data:`DIR_FILE_RECORDS` records, then read, gunzipped, parsed, mapped, encoded and published
  (:func:`producers.dir_source.ingest_paths`) until flushed; ``cloudtrail_dir_events_per_s``;
* **java**: ``org.apache.kafka.tools.ProducerPerformance`` sends as many records of the average
  event size (value bytes) to another fresh topic with the same acks, compression, idempotence,
  linger and batch size. Its payloads are random letters and unkeyed (sticky partitioner), ours
  are keyed Avro events with headers; it is the machine's limit for that volume, not a twin.

MB are MiB (2^20 bytes) of record values, as ProducerPerformance counts them.
``producer_cpu_us_per_event`` is the CPU of the whole process during the publish (the Python
thread and librdkafka's threads) per event; set against ``encode_events_per_s_per_core`` it
shows how much of an event's cost is mapping + encoding.
"""

from __future__ import annotations

import gzip
import json
import resource
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BenchContext, BenchError, Scenario
from bench.fill import create_topic, delete_bench_leftovers
from bench.java_perf import producer_perf
from bench.results import ScenarioResult
from pipeline.config import ProducerConfig
from pipeline.events.fused import encode_event
from pipeline.kafka import producer_config
from producers.dir_source import ingest_paths
from producers.files import RawRecord, loads
from producers.pool import EncodePool
from producers.publisher import DeliveryFailed, Publisher

MIN_EVENTS = 500_000
WORKERS = 2  # the second publish run: mapping + encoding in an EncodePool of this many
PARTITIONS = 6
ENCODE_SAMPLE = 50_000
POLL_EVERY_RECORDS = 1_000  # as producers.dir_source
MIB = 1024 * 1024
DIR_FILE_RECORDS = 2_000


def corpus_dir(repo_root: Path) -> Path:
    return repo_root.parent / "shared" / "corpus" / "cloudtrail"


def load_corpus(repo_root: Path) -> list[RawRecord]:
    """Every record of ``*/records.jsonl``, parsed, located as ``path:line``."""
    records = []
    for path in sorted(corpus_dir(repo_root).glob("*/records.jsonl")):
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                records.append(RawRecord(f"{path}:{number}", line, json.loads(line)))
    if not records:
        raise BenchError(f"no corpus records under {corpus_dir(repo_root)}")
    return records


def _cpu_s() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def encode_rate(records: list[RawRecord], count: int = ENCODE_SAMPLE) -> float:
    """Mapping + Avro encode (as the Publisher does it), events per CPU second, one thread."""
    now_ms, location = time.time_ns() // 1_000_000, records[0].location
    values = [r.value for r in records if r.value is not None]
    cycled = [values[i % len(values)] for i in range(count)]
    start = time.process_time()
    for value in cycled:
        encode_event(value, now_ms, "bench", "bench-encode", location)
    return count / (time.process_time() - start)


def parse_rate(records: list[RawRecord], count: int = ENCODE_SAMPLE) -> float:
    """JSON parsing of the raw lines as sources do it, events per CPU second (for scale)."""
    raws = [records[i % len(records)].raw for i in range(count)]
    start = time.process_time()
    for raw in raws:
        loads(raw)
    return count / (time.process_time() - start)


@dataclass(frozen=True, slots=True)
class PublishRun:
    events: int
    elapsed_s: float
    cpu_s: float
    value_bytes: int
    json_bytes: int


def publish(bootstrap: str, records: list[RawRecord], events: int, topic: str, dlq: str,
            extra: Mapping[str, str] | None = None, workers: int = 1) -> PublishRun:
    """Publish ``events`` records (cycled) through a Publisher configured as the daemon's
    (plus ``extra`` librdkafka settings, for experiments). ``workers`` > 1: through
    ``publish_many`` with an EncodePool of that many processes, started and warmed up before
    the clock starts (``cpu_s`` then counts this process only, not the workers)."""
    publisher = _publisher(bootstrap, topic, dlq, extra)
    pool = EncodePool(workers) if workers > 1 else None
    try:
        if pool is not None:
            pool.warm_up()
        n = len(records)
        cpu0, start = _cpu_s(), time.perf_counter()
        publisher.publish_many((records[i % n] for i in range(events)), pool,
                               poll_every=POLL_EVERY_RECORDS)
        stats = publisher.flush(120)
    except DeliveryFailed as exc:
        raise BenchError(f"publish failed: {exc}") from exc
    finally:
        if pool is not None:
            pool.terminate()
    elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu0
    del publisher  # free the Kafka client before the broker stops (no reconnect noise)
    if stats.produced != events or stats.dead_lettered:
        raise BenchError(f"produced {stats.produced}, dead-lettered {stats.dead_lettered} "
                         f"of {events}")
    return PublishRun(events, elapsed, cpu, stats.bytes_out, stats.bytes_in)


def publish_dir(bootstrap: str, records: list[RawRecord], events: int, topic: str,
                dlq: str) -> PublishRun:
    """``events`` records (cycled) as ``.json.gz`` delivery files, published as
    ``cloudtrail-dir --workers 1`` does; timed from the first file read to the end of flush."""
    publisher = _publisher(bootstrap, topic, dlq, None)
    n = len(records)
    with tempfile.TemporaryDirectory(prefix="bench-produce-") as tmp:
        for first in range(0, events, DIR_FILE_RECORDS):
            batch = [records[i % n].value for i in range(first, min(first + DIR_FILE_RECORDS,
                                                                      events))]
            path = Path(tmp) / f"{first // DIR_FILE_RECORDS:06d}_CloudTrail.json.gz"
            path.write_bytes(gzip.compress(json.dumps({"Records": batch}).encode(), 6))
        cpu0, start = _cpu_s(), time.perf_counter()
        try:
            ingest_paths(publisher, [Path(tmp)], max_record_bytes=1 << 20, workers=1)
            stats = publisher.flush(120)
        except DeliveryFailed as exc:
            raise BenchError(f"publish failed: {exc}") from exc
        elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu0
    del publisher
    if stats.produced != events:
        raise BenchError(f"cloudtrail-dir produced {stats.produced} of {events}")
    return PublishRun(events, elapsed, cpu, stats.bytes_out, stats.bytes_in)


def _publisher(bootstrap: str, topic: str, dlq: str,
               extra: Mapping[str, str] | None) -> Publisher:
    p = ProducerConfig()
    # log_level 3: a fresh broker makes the idempotent producer warn while it loads.
    base = {"bootstrap.servers": bootstrap, "client.id": "bench-produce", "log_level": 3}
    conf = producer_config(base, {
        "compression.type": p.compression, "linger.ms": str(p.linger_ms),
        "batch.size": str(p.batch_bytes), "delivery.timeout.ms": str(p.delivery_timeout_ms),
        **(extra or {})})
    publisher = Publisher(conf, events_topic=topic, dlq_topic=dlq, source="bench",
                          producer_id="bench-produce")
    if not publisher.healthy(10):
        raise BenchError(f"topic {topic} not visible to the producer")
    return publisher


def _measure(ctx: BenchContext, topics: dict[str, str]) -> ScenarioResult:
    say = ctx.console.print
    events = max(ctx.records, MIN_EVENTS)
    records = load_corpus(ctx.repo_root)
    say(f"[bold]produce[/]: {len(records):,} corpus records; mapping + encode alone")
    encode_per_core = encode_rate(records)
    parse_per_core = parse_rate(records)
    say(f"  encode {encode_per_core:,.0f} events/s per core; publishing {events:,} events")
    for name in ("events", "events2", "events3", "java"):
        create_topic(ctx.bootstrap, topics[name], PARTITIONS)
    create_topic(ctx.bootstrap, topics["dlq"], 1)
    run = publish(ctx.bootstrap, records, events, topics["events"], topics["dlq"])
    rate = run.events / run.elapsed_s
    avro_bytes = run.value_bytes / run.events
    say(f"  {rate:,.0f} events/s ({run.elapsed_s:.1f}s); with {WORKERS} encode workers")
    run2 = publish(ctx.bootstrap, records, events, topics["events2"], topics["dlq"],
                   workers=WORKERS)
    rate2 = run2.events / run2.elapsed_s
    say(f"  {rate2:,.0f} events/s ({run2.elapsed_s:.1f}s); Java ProducerPerformance, "
        f"{events:,} x {round(avro_bytes)} B")
    run3 = publish_dir(ctx.bootstrap, records, events, topics["events3"], topics["dlq"])
    rate3 = run3.events / run3.elapsed_s
    say(f"  cloudtrail-dir (files, parse included, 1 process) {rate3:,.0f} events/s "
        f"({run3.elapsed_s:.1f}s)")
    p = ProducerConfig()
    java = producer_perf(ctx.repo_root, ctx.bootstrap, topics["java"], events,
                         round(avro_bytes), {
                             "acks": "all", "enable.idempotence": "true",
                             "compression.type": p.compression, "linger.ms": str(p.linger_ms),
                             "batch.size": str(p.batch_bytes)})
    return {
        "events": events,
        "partitions": PARTITIONS,
        "compression": p.compression,
        "linger_ms": p.linger_ms,
        "events_per_s": round(rate, 1),
        "mb_per_s": round(run.value_bytes / run.elapsed_s / MIB, 2),
        "elapsed_s": round(run.elapsed_s, 3),
        "producer_cpu_s": round(run.cpu_s, 2),
        "producer_cpu_us_per_event": round(run.cpu_s / run.events * 1e6, 2),
        "producer_perf_records_per_s": (None if java.records_per_s is None
                                        else round(java.records_per_s, 1)),
        "producer_perf_mb_per_s": java.mb_per_s,
        "producer_perf_error": java.error,
        "ratio_vs_producer_perf": (None if java.records_per_s is None
                                   else round(rate / java.records_per_s, 3)),
        "workers": WORKERS,
        "events_per_s_workers_2": round(rate2, 1),
        "elapsed_s_workers_2": round(run2.elapsed_s, 3),
        "producer_main_cpu_us_per_event_workers_2": round(run2.cpu_s / run2.events * 1e6, 2),
        "ratio_vs_producer_perf_workers_2": (None if java.records_per_s is None
                                             else round(rate2 / java.records_per_s, 3)),
        "cloudtrail_dir_events_per_s": round(rate3, 1),
        "cloudtrail_dir_cpu_us_per_event": round(run3.cpu_s / run3.events * 1e6, 2),
        "ratio_vs_producer_perf_cloudtrail_dir": (None if java.records_per_s is None
                                                  else round(rate3 / java.records_per_s, 3)),
        "encode_events_per_s_per_core": round(encode_per_core, 1),
        "json_parse_events_per_s_per_core": round(parse_per_core, 1),
        "avro_bytes_per_event": round(avro_bytes, 1),
        "json_bytes_per_event": round(run.json_bytes / run.events, 1),
    }


def run(ctx: BenchContext) -> ScenarioResult:
    """Measure on fresh topics, deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    topics = {name: f"bench.produce.{name}.{suffix}" for name in ("events", "events2", "events3",
                                                                     "dlq", "java")}
    try:
        return _measure(ctx, topics)
    finally:
        for topic in topics.values():
            delete_bench_leftovers(ctx.bootstrap, topic, [])


def _rate(value: Any, unit: str) -> str:
    return "n/a" if value is None else f"{value:,.0f} {unit}"


def summary(r: ScenarioResult) -> str:
    java = _rate(r.get("producer_perf_records_per_s"), "rec/s")
    if r.get("producer_perf_error"):
        java += f" ({r['producer_perf_error']})"
    return (f"produce: {r['events']:,} events | {_rate(r['events_per_s'], 'events/s')} "
            f"({r['mb_per_s']} MiB/s, {r['elapsed_s']}s) | ProducerPerformance {java} "
            f"= ratio {r['ratio_vs_producer_perf']} | {r.get('workers', 2)} workers "
            f"{_rate(r.get('events_per_s_workers_2'), 'events/s')} = ratio "
            f"{r.get('ratio_vs_producer_perf_workers_2')} | cloudtrail-dir "
            f"{_rate(r.get('cloudtrail_dir_events_per_s'), 'events/s')} | encode "
            f"{_rate(r['encode_events_per_s_per_core'], 'events/s/core')} | "
            f"{r['avro_bytes_per_event']} B Avro vs {r['json_bytes_per_event']} B JSON")


SCENARIO = Scenario(run=run, summary=summary,
                    description="Publisher vs Java ProducerPerformance, and encode per core")
