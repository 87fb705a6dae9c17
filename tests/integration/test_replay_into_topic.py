"""Replay into a topic on the real broker: the hot path selects records, they are copied into a
target topic with their key, value bytes, timestamp and headers plus the x-replay-* headers,
and a re-run of the same replay id (after a run that stopped half-way) writes nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from replay_kit import KEEP  # timestamps are event times, years old: keep them

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, parse_event_time, to_avro
from pipeline.events.partition import event_key
from pipeline.kafka import producer_config
from pipeline.replay.config import ReplayConfig
from pipeline.replay.filters import Filters
from pipeline.replay.hot import make_plan, read_plan, replay_consumer
from pipeline.replay.to_topic import coordinates, replay_to_topic, replayed_from

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_000_000_000, "test", "replay", "records.jsonl")
CFG = ReplayConfig(idle_timeout_ms=20_000, metadata_timeout_ms=10_000)
Key = tuple[bytes | None, bytes | None, int, tuple[tuple[str, bytes], ...]]


def load_source(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """The timed corpus records keyed like our producers, timestamped with their event time,
    each with an ``origin`` header naming its index."""
    records = [r for path in sorted(CORPUS.glob("*/records.jsonl"))
               for line in path.read_text().splitlines() if line.strip()
               for r in [json.loads(line)] if parse_event_time(r)[0] is not None]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "partitioner": "murmur2_random", "linger.ms": 5})
    for i, record in enumerate(records):
        producer.produce(topic, wire.encode(to_avro(record, ingest=INGEST)),
                         key=event_key(record), timestamp=parse_event_time(record)[0] or 0,
                         headers=[("origin", str(i).encode())])
    assert producer.flush(30) == 0
    return records


def read_all(bootstrap: str, topic: str, partitions: int) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
             for p in range(partitions)}
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[Any] = []
    for _ in range(30):  # each consume waits up to 1 s
        if len(got) >= sum(highs.values()):
            break
        got.extend(m for m in consumer.consume(100_000, 1) if m.error() is None)
    assert len(got) == sum(highs.values()), f"{topic}: {len(got)} of {sum(highs.values())}"
    consumer.close()
    return got


def essentials(m: Any) -> Key:
    """Key, value, timestamp and the non-replay headers of a record."""
    headers = tuple((k, v) for k, v in (m.headers() or []) if not k.startswith("x-replay-"))
    return m.key(), m.value(), m.timestamp()[1], headers


def test_rerun_of_a_replay_id_copies_each_selected_record_once_and_unchanged(
        kafka: Any, make_topic: Callable[..., str]) -> None:
    source, target = make_topic("replay-src", 3, **KEEP), make_topic("replay-dst", 3, **KEEP)
    records = load_source(kafka.bootstrap, source)
    times = sorted(t for t in (parse_event_time(r)[0] for r in records) if t is not None)
    filters = Filters(times[len(times) // 4], times[3 * len(times) // 4])
    base = {"bootstrap.servers": kafka.bootstrap}
    consumer = replay_consumer(base, {})
    producer = Producer(producer_config(base, {"linger.ms": "5"}))
    try:
        plan = make_plan(consumer, source, filters, CFG)
        hot = read_plan(consumer, plan, filters, events_decoder(Config()), CFG)
        offsets = coordinates(hot.table)
        assert hot.table.num_rows > 10
        half = {p: o[: len(o) // 2] for p, o in offsets.items()}  # a run that stopped early
        first = replay_to_topic(consumer, producer, source, half, target, "case-1", CFG)
        second = replay_to_topic(consumer, producer, source, offsets, target, "case-1", CFG)
        third = replay_to_topic(consumer, producer, source, offsets, target, "case-1", CFG)
    finally:
        consumer.close()
    total = hot.table.num_rows
    assert second.produced == total - first.produced > 0
    assert (third.produced, third.skipped) == (0, total)
    written = read_all(kafka.bootstrap, target, 3)
    sources = [replayed_from(m.headers(), "case-1") for m in written]
    wanted = {(source, p, o) for p, offs in offsets.items() for o in offs}
    assert len(sources) == len(set(sources)) == total and set(sources) == wanted
    originals = {(source, m.partition(), m.offset()): essentials(m)
                 for m in read_all(kafka.bootstrap, source, 3)}
    assert all(essentials(m) == originals[replayed_from(m.headers(), "case-1")]  # type: ignore[index]
               for m in written)


def trailpipe_replay(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli.app", "replay", *args],
                          capture_output=True, timeout=120, check=False,
                          env={**os.environ, "TRAILPIPE_LOG__FORMAT": "json"})


def test_cli_to_topic_creates_the_replay_topic_and_a_rerun_writes_nothing_twice(
        kafka: Any, make_topic: Callable[..., str]) -> None:
    source = make_topic("replay-cli", 3, **KEEP)
    records = load_source(kafka.bootstrap, source)
    times = sorted(t for t in (parse_event_time(r)[0] for r in records) if t is not None)
    window = ["--from", iso_z(times[len(times) // 3]), "--to", iso_z(times[2 * len(times) // 3]),
              "--topic", source, "--bootstrap", kafka.bootstrap, "--to-topic", "replay"]
    runs = [trailpipe_replay(*window) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr.decode()
    first, second = (json.loads(r.stderr.decode().strip().splitlines()[-1]) for r in runs)
    target = first["to_topic"]["target"]
    assert target == f"replay.{first['to_topic']['replay_id']}.events.v1"
    assert first["to_topic"]["created"] and not second["to_topic"]["created"]
    assert first["to_topic"]["produced"] == first["matched"] > 0
    assert (second["to_topic"]["produced"], second["to_topic"]["skipped"]) == (0, first["matched"])
    assert len(read_all(kafka.bootstrap, target, 3)) == first["matched"]


def test_cli_refuses_the_live_events_topic_without_force(kafka: Any) -> None:
    result = trailpipe_replay("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z",
                              "--bootstrap", kafka.bootstrap, "--to-topic", "audit.events.v1")
    assert result.returncode == 2
    assert "refusing to write a replay into audit.events.v1 (the live events topic)" in (
        result.stderr.decode())


def iso_z(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
