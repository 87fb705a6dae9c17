"""Confluent wire format against a real Confluent-compatible registry (Apicurio, ccompat API).

The module starts its own launcher cluster (one broker + schema registry) in a private state dir
and always downs it. Proves: the codec registers ApiCallEvent v1 under ``<topic>-value``; every
corpus record survives encode -> decode -> ``from_avro`` with types intact; messages produced
to Kafka and consumed decode with a fresh client (writer schema fetched by id); the additive
v1.1 registers as version 2 under BACKWARD, an incompatible change is refused, and old data
still decodes (also into the v1.1 shape).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryError
from kit import read_all

from pipeline.config import Config, SchemaRegistryConfig, StorageConfig, TopicsConfig
from pipeline.daemon import Context, build_registered
from pipeline.dev import ClusterInfo, down, status, up
from pipeline.dev.model import load_state
from pipeline.dev.procs import free_port, is_ours
from pipeline.events import IngestMeta, encode, from_avro, to_avro
from pipeline.events.confluent import (
    ConfluentCodec,
    RegistryError,
    is_confluent_framed,
    schema_id_of,
    schema_text,
)
from pipeline.events.schemas import default_registry
from pipeline.lake.config import ArchiverConfig

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "sr-1", "records.jsonl")


def corpus() -> list[dict[str, Any]]:
    records = [json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 1000, f"expected the shared corpus at {CORPUS}"
    return records


def same(a: Any, b: Any) -> bool:
    """Equal with types (1, 1.0 and True differ; NaN equals NaN), via canonical JSON text."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schema-registry")


@pytest.fixture(scope="module")
def cluster(state_dir: Path) -> Iterator[ClusterInfo]:
    try:
        yield up(state_dir, brokers=1, schema_registry=True)
    finally:
        down(state_dir, purge=True)


@pytest.fixture(scope="module")
def url(cluster: ClusterInfo) -> str:
    assert cluster.schema_registry_url is not None
    return cluster.schema_registry_url


def make_topic(cluster: ClusterInfo) -> str:
    topic = f"sr.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(dict(cluster.client_config()))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    return topic


def test_launcher_records_the_registry(cluster: ClusterInfo, state_dir: Path, url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/apis/ccompat/v7", url)
    info = status(state_dir)
    assert info is not None and info.to_json_dict()["schema_registry_url"] == url
    assert up(state_dir, brokers=1, schema_registry=True).schema_registry_url == url  # idempotent
    codec = ConfluentCodec(url, "probe-value")
    assert codec.client.get_compatibility() == "BACKWARD"  # the launcher's default, as Confluent


def test_corpus_round_trip_is_lossless(cluster: ClusterInfo, url: str) -> None:
    topic = f"sr.corpus.{uuid.uuid4().hex[:8]}"  # no Kafka topic needed: the subject is enough
    writer = ConfluentCodec.for_topic(url, topic)
    records = corpus()
    messages = [writer.encode(to_avro(r, ingest=INGEST)) for r in records]
    assert writer.schema_id is not None
    assert all(is_confluent_framed(m) and schema_id_of(m) == writer.schema_id for m in messages)
    assert writer.client.get_versions(f"{topic}-value") == [1]
    registered = writer.client.get_version(f"{topic}-value", 1)
    assert registered.schema_id == writer.schema_id
    assert registered.schema.schema_str == schema_text("1")
    reader = ConfluentCodec.for_topic(url, topic)  # fresh client: fetches the schema by id
    bad = [i for i, (m, r) in enumerate(zip(messages, records, strict=True))
           if not same(from_avro(reader.decode(m)), r)]
    assert bad == [], f"{len(bad)} records changed, first at index {bad[:1]}"


def test_produced_messages_decode_after_consuming(cluster: ClusterInfo, url: str) -> None:
    topic = make_topic(cluster)
    records = corpus()
    writer = ConfluentCodec.for_topic(url, topic)
    producer = Producer(cluster.client_config())
    errors: list[KafkaError] = []
    for r in records:
        producer.produce(topic, writer.encode(to_avro(r, ingest=INGEST)),
                         on_delivery=lambda err, _msg: err is None or errors.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0 and errors == []
    reader = ConfluentCodec.for_topic(url, topic)
    got = consume(cluster, topic, len(records))
    assert [schema_id_of(v) for v in got] == [writer.schema_id] * len(records)
    assert all(same(from_avro(reader.decode(v)), r) for v, r in zip(got, records, strict=True))


def test_produce_command_uses_the_registry_wire_format(cluster: ClusterInfo, url: str) -> None:
    topic = make_topic(cluster)
    path = CORPUS / "stratus-red-team" / "records.jsonl"
    env = {**os.environ, "TRAILPIPE_SCHEMA_REGISTRY__URL": url,
           "TRAILPIPE_TOPICS__EVENTS": topic, "TRAILPIPE_LOG__FORMAT": "json"}
    result = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "produce", "cloudtrail-dir",
                             str(path), "--bootstrap", cluster.bootstrap], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    want = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    got = consume(cluster, topic, len(want))
    reader = ConfluentCodec.for_topic(url, topic)
    assert all(is_confluent_framed(v) for v in got)
    decoded = sorted((from_avro(reader.decode(v)) for v in got), key=lambda r: r["eventID"])
    assert all(same(a, b) for a, b in zip(decoded, sorted(want, key=lambda r: r["eventID"]),
                                           strict=True))


def produce_values(cluster: ClusterInfo, topic: str, values: list[bytes]) -> None:
    producer = Producer(cluster.client_config())
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0


def consume(cluster: ClusterInfo, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({**cluster.client_config(), "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(values) < count and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=1.0):
                assert msg.error() is None, msg.error()
                values.append(msg.value())
    finally:
        consumer.close()
    assert len(values) == count, f"consumed {len(values)} of {count} within 30 s"
    return values


def test_additive_version_under_backward(cluster: ClusterInfo, url: str) -> None:
    topic = f"sr.evolve.{uuid.uuid4().hex[:8]}"
    subject = f"{topic}-value"
    v1 = ConfluentCodec.for_topic(url, topic)
    records = corpus()[:50]
    old = [v1.encode(to_avro(r, ingest=INGEST)) for r in records]
    v1.client.set_compatibility(subject, "BACKWARD")
    assert v1.client.get_compatibility(subject) == "BACKWARD"

    v1_1 = ConfluentCodec(url, subject, schema_text("1.1"), reader_schema_str=schema_text("1.1"))
    new_id = v1_1.register()
    assert v1.client.get_versions(subject) == [1, 2]
    assert new_id != v1.schema_id and v1.client.get_version(subject, 2).schema_id == new_id
    assert ConfluentCodec.for_topic(url, topic).register() == v1.schema_id  # v1 keeps its id

    incompatible = json.loads(schema_text("1.1"))
    incompatible["fields"].append({"name": "required", "type": "string"})  # no default
    with pytest.raises(RegistryError) as refused:
        ConfluentCodec(url, subject, json.dumps(incompatible)).register()
    cause = refused.value.__cause__
    assert isinstance(cause, SchemaRegistryError) and cause.http_status_code == 409
    assert v1.client.get_versions(subject) == [1, 2]

    plain = ConfluentCodec.for_topic(url, topic)  # writer schema as reader
    for m, r in zip(old, records, strict=True):
        assert same(from_avro(plain.decode(m)), r)
        as_v1_1 = v1_1.decode(m)  # old data, read as v1.1: the new field takes its default
        assert as_v1_1["labels"] == {} and same(from_avro(as_v1_1), r)
    datum = {**to_avro(records[0], ingest=INGEST), "labels": {"team": "audit"}}
    fresh = v1_1.encode(datum)
    assert schema_id_of(fresh) == new_id
    assert plain.decode(fresh)["labels"] == {"team": "audit"}


def test_archiver_takes_mixed_writers_and_dead_letters_corrupt_ones(
        cluster: ClusterInfo, url: str, tmp_path: Path) -> None:
    """One topic holding v1, v1.1 and Confluent-framed events plus 3 corrupt messages,
    interleaved: the archiver (batch path) writes every good record once, v1.1 labels kept,
    and dead-letters the 3 with their reasons; consumed = archived + dead-lettered."""
    topic, dlq, deliveries, health = (make_topic(cluster) for _ in range(4))
    registry = default_registry()
    codec = ConfluentCodec.for_topic(url, topic)
    good: list[tuple[bytes, dict[str, str] | None]] = []
    for i, record in enumerate(corpus()[:240]):
        datum = to_avro(record, ingest=INGEST)
        if i % 3 == 1:
            label = {"team": f"t{i}"}
            good.append((encode({**datum, "labels": label}, registry.get(version="1.1")), label))
        else:
            good.append((encode(datum) if i % 3 == 0 else codec.encode(datum), None))
    corrupt = {10: good[3][0][:-7], 100: b"\xc3\x01" + bytes(8) + b"body",
               200: b"not avro at all"}
    for offset, value in sorted(corrupt.items()):
        good.insert(offset, (value, None))
    values = [v for v, _ in good]
    labels = {o: label for o, (_, label) in enumerate(good) if label}
    produce_values(cluster, topic, values)
    cfg = Config(topics=TopicsConfig(events=topic, dlq=dlq, deliveries=deliveries,
                                     health=health),
                 storage=StorageConfig(lake=f"file://{tmp_path}/lake"),
                 schema_registry=SchemaRegistryConfig(url=url),
                 archiver=ArchiverConfig(max_age_ms=1000))
    stats = build_registered("archiver", Context(cfg, cluster.bootstrap)).run(idle_exit_s=4)

    assert (stats.consumed, stats.processed, stats.dead_lettered) == (243, 240, 3)
    lake = pq.read_table([str(p) for p in (tmp_path / "lake").rglob("*.parquet")])
    offsets = lake["_offset"].to_pylist()
    assert sorted(offsets) == [o for o in range(243) if o not in corrupt]  # each once
    got_labels = {o: dict(m) for o, m in zip(offsets, lake["_labels"].to_pylist(), strict=True)
                  if m}
    assert got_labels == {o: labels[o] for o in got_labels} and len(got_labels) == 80
    dead = read_all(cluster.bootstrap, dlq, expected=3)
    reasons = {int(dict(m.headers())["x-source-offset"]): dict(m.headers())["x-error-type"]
               for m in dead}
    assert reasons == {10: b"TruncatedBodyError", 100: b"UnknownSchemaError",
                       200: b"BadMagicError"}
    assert {m.value() for m in dead} == set(corrupt.values())


def test_unreachable_registry_is_a_registry_error() -> None:
    codec = ConfluentCodec.for_topic(f"http://127.0.0.1:{free_port()}", "nowhere",
                                     client_conf={"max.retries": 0, "timeout": 2})
    with pytest.raises(RegistryError):
        codec.encode(to_avro(corpus()[0], ingest=INGEST))


def test_down_stops_the_registry(cluster: ClusterInfo, state_dir: Path) -> None:
    state = load_state(state_dir)
    assert state is not None and state.schema_registry is not None
    reg = state.schema_registry.proc
    assert is_ours(reg)
    assert reg.pid in down(state_dir)
    assert not is_ours(reg)
    assert status(state_dir) is None
