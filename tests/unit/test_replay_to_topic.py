"""Replay into a topic: target naming and safety, headers, and the re-run rule, over an
in-memory broker (a fake consumer and producer sharing one log per topic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
from confluent_kafka import KafkaError

from pipeline.config import TopicsConfig
from pipeline.producer import DeliveryError
from pipeline.replay.config import ReplayConfig
from pipeline.replay.hot import OFFSET, PARTITION, ReplayError
from pipeline.replay.to_topic import (
    REPLAY_ID,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    ToTopicError,
    coordinates,
    replay_headers,
    replay_to_topic,
    replayed_from,
    target_topic,
)

CFG = ReplayConfig(batch_size=3, poll_timeout_ms=10, idle_timeout_ms=100)


@dataclass
class Msg:
    """What the consumer returns: a record, or an end-of-partition event (``eof``)."""

    _partition: int
    _offset: int
    _key: bytes | None = None
    _value: bytes | None = None
    _headers: list[tuple[str, bytes]] | None = None
    _timestamp_ms: int = 0
    eof: bool = False

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp_ms)

    def error(self) -> Any:
        return KafkaError(KafkaError._PARTITION_EOF) if self.eof else None


@dataclass
class Broker:
    logs: dict[str, dict[int, list[Msg]]] = field(default_factory=dict)

    def append(self, topic: str, partition: int, **record: Any) -> None:
        log = self.logs.setdefault(topic, {}).setdefault(partition, [])
        log.append(Msg(partition, len(log), **record))


class FakeConsumer:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.positions: dict[int, int] = {}
        self.topic = ""
        self.eof_sent: set[int] = set()

    def list_topics(self, topic: str, timeout: float) -> Any:
        parts = self.broker.logs.get(topic)
        meta = None if parts is None else type("M", (), {"error": None, "partitions": parts})
        return type("T", (), {"topics": {} if meta is None else {topic: meta}})

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        return 0, len(self.broker.logs[tp.topic][tp.partition])

    def assign(self, tps: list[Any]) -> None:
        self.topic = tps[0].topic if tps else ""
        self.positions = {tp.partition: tp.offset for tp in tps}
        self.eof_sent = set()

    def resume(self, tps: list[Any]) -> None:
        pass

    def unassign(self) -> None:
        self.positions = {}

    def consume(self, n: int, timeout: float) -> list[Msg]:
        out: list[Msg] = []
        for p, pos in self.positions.items():
            log = self.broker.logs[self.topic][p]
            take = log[pos:pos + n - len(out)]
            out.extend(take)
            self.positions[p] = pos + len(take)
            if self.positions[p] == len(log) and p not in self.eof_sent and len(out) < n:
                self.eof_sent.add(p)
                out.append(Msg(p, len(log), eof=True))
        return out


class FakeProducer:
    """Appends to the broker at flush (partition 0), reporting each delivery; ``fail`` makes
    every delivery report an error instead."""

    def __init__(self, broker: Broker, fail: bool = False) -> None:
        self.broker, self.fail = broker, fail
        self.queued: list[tuple[str, dict[str, Any]]] = []

    def produce(self, topic: str, **kw: Any) -> None:
        self.queued.append((topic, kw))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        for topic, kw in self.queued:
            if self.fail:
                kw["on_delivery"](KafkaError(KafkaError._MSG_TIMED_OUT), None)
                continue
            self.broker.append(topic, 0, _key=kw["key"], _value=kw["value"],
                               _headers=kw["headers"], _timestamp_ms=kw["timestamp"])
            kw["on_delivery"](None, None)
        self.queued = []
        return 0


def source_broker() -> Broker:
    broker = Broker()
    for p in range(2):
        for i in range(5):
            broker.append("audit.events.v1", p, _key=f"k{p}".encode(),
                          _value=f"avro-{p}-{i}".encode(), _timestamp_ms=1000 * p + i,
                          _headers=[("origin", b"s3"), ("x-replay-id", b"older")])
    return broker


def target_records(broker: Broker, target: str) -> list[Msg]:
    return [m for log in broker.logs.get(target, {}).values() for m in log]


def test_default_target_is_a_replay_topic() -> None:
    assert target_topic("case-42", TopicsConfig()) == "replay.case-42.events.v1"
    assert target_topic("case-42", TopicsConfig(), "replay.sandbox") == "replay.sandbox"


@pytest.mark.parametrize("name", ["audit.events.v1", "audit.anything.v9", "live.events"])
def test_pipeline_and_audit_topics_need_force(name: str) -> None:
    topics = TopicsConfig(events="live.events")
    with pytest.raises(ToTopicError, match="--force"):
        target_topic("r1", topics, name)
    assert target_topic("r1", topics, name, force=True) == name


def test_live_events_topic_is_named_in_the_refusal() -> None:
    with pytest.raises(ToTopicError, match="live events topic"):
        target_topic("r1", TopicsConfig(), "audit.events.v1")


@pytest.mark.parametrize("bad", ["", "a b", "a.b", "x" * 201, "é"])
def test_replay_id_must_fit_a_topic_name(bad: str) -> None:
    with pytest.raises(ToTopicError, match="replay id"):
        target_topic(bad, TopicsConfig())


def test_coordinates_group_sorted_offsets_by_partition() -> None:
    table = pa.table({PARTITION: pa.array([2, 0, 2, 0], pa.int32()),
                      OFFSET: pa.array([9, 4, 3, 1], pa.int64())})
    assert coordinates(table) == {0: [1, 4], 2: [3, 9]}


def test_headers_keep_the_source_ones_and_replace_replay_ones() -> None:
    headers = replay_headers([("origin", b"s3"), ("x-replay-id", b"older")], "r2",
                             ("audit.events.v1", 3, 17))
    assert headers == [("origin", b"s3"), (REPLAY_ID, b"r2"),
                       (SOURCE_TOPIC, b"audit.events.v1"), (SOURCE_PARTITION, b"3"),
                       (SOURCE_OFFSET, b"17")]
    assert replayed_from(headers, "r2") == ("audit.events.v1", 3, 17)
    assert replayed_from(headers, "other") is None
    assert replayed_from([("origin", b"s3")], "r2") is None


def test_records_keep_key_value_timestamp_and_headers() -> None:
    broker = source_broker()
    result = replay_to_topic(FakeConsumer(broker), FakeProducer(broker),  # type: ignore[arg-type]
                             "audit.events.v1", {0: [1, 3], 1: [4]}, "replay.r1", "r1", CFG)
    assert (result.produced, result.skipped) == (3, 0)
    got = {(m.value(), m.key(), m.timestamp()[1]): m.headers()
           for m in target_records(broker, "replay.r1")}
    assert set(got) == {(b"avro-0-1", b"k0", 1), (b"avro-0-3", b"k0", 3),
                        (b"avro-1-4", b"k1", 1004)}
    assert got[(b"avro-1-4", b"k1", 1004)] == [
        ("origin", b"s3"), (REPLAY_ID, b"r1"), (SOURCE_TOPIC, b"audit.events.v1"),
        (SOURCE_PARTITION, b"1"), (SOURCE_OFFSET, b"4")]


def test_a_rerun_of_the_same_replay_id_writes_each_source_record_once() -> None:
    broker = source_broker()
    offsets = {0: [0, 2], 1: [1, 3]}
    consumer = FakeConsumer(broker)
    first = replay_to_topic(consumer, FakeProducer(broker), "audit.events.v1",  # type: ignore[arg-type]
                            {0: [0]}, "replay.r1", "r1", CFG)
    second = replay_to_topic(consumer, FakeProducer(broker), "audit.events.v1",  # type: ignore[arg-type]
                             offsets, "replay.r1", "r1", CFG)
    again = replay_to_topic(consumer, FakeProducer(broker), "audit.events.v1",  # type: ignore[arg-type]
                            offsets, "replay.r1", "r1", CFG)
    assert [(r.produced, r.skipped) for r in (first, second, again)] == [(1, 0), (3, 1), (0, 4)]
    sources = [replayed_from(m.headers(), "r1") for m in target_records(broker, "replay.r1")]
    assert sorted(sources) == sorted(("audit.events.v1", p, o)  # type: ignore[type-var]
                                     for p, offs in offsets.items() for o in offs)


def test_another_replay_id_into_the_same_topic_is_not_skipped() -> None:
    broker = source_broker()
    consumer = FakeConsumer(broker)
    for replay_id in ("r1", "r2"):
        result = replay_to_topic(consumer, FakeProducer(broker), "audit.events.v1",  # type: ignore[arg-type]
                                 {0: [0, 1]}, "replay.shared", replay_id, CFG)
        assert (result.produced, result.skipped) == (2, 0)
    assert len(target_records(broker, "replay.shared")) == 4


def test_a_failed_delivery_raises() -> None:
    broker = source_broker()
    with pytest.raises(DeliveryError, match="2 failed"):
        replay_to_topic(FakeConsumer(broker), FakeProducer(broker, fail=True),  # type: ignore[arg-type]
                        "audit.events.v1", {0: [0, 1]}, "replay.r1", "r1", CFG)


def test_a_source_offset_past_the_log_is_reported() -> None:
    broker = source_broker()
    with pytest.raises(ReplayError, match="not found"):
        replay_to_topic(FakeConsumer(broker), FakeProducer(broker),  # type: ignore[arg-type]
                        "audit.events.v1", {0: [1, 7]}, "replay.r1", "r1", CFG)
