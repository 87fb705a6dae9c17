"""The health monitor on a real broker: a group whose committed offsets are behind the end is
reported with its lag in records and in seconds (from the timestamp of the record at the
committed offset), lag_high above a threshold; dead letters from one source above the rate
threshold are dlq_rate_high, and dlq_rate_ok once they stop. The thread runs both probes and
survives a cluster that does not answer."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from pipeline.config import KafkaConfig
from pipeline.deadletter import dead_letter
from pipeline.health.config import HealthConfig
from pipeline.health.monitor import build_monitor
from pipeline.health.record import decode_health

pytestmark = pytest.mark.integration

BASE_MS = 1_764_000_000_000  # record i of a partition has timestamp BASE_MS + i s
NOW_MS = BASE_MS + 3_600_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


def produce_timed(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, b"x", partition=p, timestamp=BASE_MS + i * 1000)
    assert producer.flush(30) == 0


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                        asynchronous=False)
    finally:
        consumer.close()


def produce_dead_letters(bootstrap: str, topic: str, sources: dict[str, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for source, count in sources.items():
        for i in range(count):
            record = dead_letter(dlq_topic=topic, error_type="E", error="bad", key=None,
                                 value=b"raw", source=source, location=f"f:{i}")
            producer.produce(topic, record.value, record.key, headers=list(record.headers))
    assert producer.flush(30) == 0


def drained(monitor: Any, group: str | None = None) -> list[dict[str, Any]]:
    datums = [decode_health(r.value) for r in monitor.drain()]
    return [d for d in datums if group is None or d["subject"].startswith(f"{group}/")]


def test_lag_in_records_and_seconds_and_lag_high(kafka, make_topic, unique) -> None:
    events = make_topic("events", 2)
    group = f"trailpipe-health-test-{unique}"
    produce_timed(kafka.bootstrap, events, 2, per_partition=10)
    commit(kafka.bootstrap, group, {(events, 0): 3, (events, 1): 10})
    config = HealthConfig(lag_threshold_events=5, lag_threshold_s=7_200)
    monitor = build_monitor(KafkaConfig(), kafka.bootstrap, config, health_topic="health",
                            dlq_topic=make_topic("dlq", 1), clock=Clock())
    try:
        monitor.lag_round()
        datums = drained(monitor, group)
    finally:
        monitor.close()
    by_status = {(d["status"], d["subject"]): d for d in datums}
    assert sorted(by_status) == [("lag", f"{group}/{events}[0]"),
                                 ("lag", f"{group}/{events}[1]"),
                                 ("lag_high", f"{group}/{events}[0]")]
    behind = by_status[("lag_high", f"{group}/{events}[0]")]
    # the record at committed offset 3 was stamped BASE_MS + 3 s
    assert behind["metrics"] == {"lag_events": 7.0, "committed_offset": 3.0, "end_offset": 10.0,
                                 "lag_s": (NOW_MS - BASE_MS - 3_000) / 1000}
    assert behind["component"] == "aggregator" and behind["at_ms"] == NOW_MS
    caught_up = by_status[("lag", f"{group}/{events}[1]")]
    assert caught_up["metrics"] == {"lag_events": 0.0, "committed_offset": 10.0,
                                    "end_offset": 10.0}


def test_dead_letter_rate_per_source(kafka, make_topic) -> None:
    dlq = make_topic("dlq", 2)
    produce_dead_letters(kafka.bootstrap, dlq, {"before-start": 500})
    clock = Clock()
    config = HealthConfig(dlq_threshold_per_min=10, lag_groups=["trailpipe-none"])
    monitor = build_monitor(KafkaConfig(), kafka.bootstrap, config, health_topic="health",
                            dlq_topic=dlq, clock=clock)
    try:
        monitor.dlq_round()  # starts at the end: what came before is not counted
        produce_dead_letters(kafka.bootstrap, dlq, {"http": 30, "cloudtrail-dir": 5})
        clock.now_ms += 60_000
        monitor.dlq_round()
        high = drained(monitor)
        clock.now_ms += 60_000
        monitor.dlq_round()
        ok = drained(monitor)
    finally:
        monitor.close()
    assert [(d["status"], d["subject"], d["metrics"]["dead_letters"]) for d in high] == [
        ("dlq_rate_high", "http", 30.0)]
    assert high[0]["metrics"]["dead_letters_per_min"] == 30.0
    assert [(d["status"], d["subject"]) for d in ok] == [("dlq_rate_ok", "http")]


def test_the_thread_runs_both_probes_and_survives_failures(kafka, make_topic, unique) -> None:
    events, dlq = make_topic("events", 1), make_topic("dlq", 1)
    group = f"trailpipe-health-thread-{unique}"
    produce_timed(kafka.bootstrap, events, 1, per_partition=4)
    commit(kafka.bootstrap, group, {(events, 0): 1})
    config = HealthConfig(lag_interval_ms=200, dlq_interval_ms=200, lag_groups=[group])
    monitor = build_monitor(KafkaConfig(), kafka.bootstrap, config, health_topic="audit.h",
                            dlq_topic=dlq)
    failing = build_monitor(KafkaConfig(), "127.0.0.1:1", config.model_copy(
        update={"lag_interval_ms": 100}), health_topic="h", dlq_topic=dlq)
    monitor.start()
    failing.start()
    try:
        deadline = time.monotonic() + 20
        records: list[Any] = []
        while (len(records) < 2 or not failing.failures) and time.monotonic() < deadline:
            records += monitor.drain()
            time.sleep(0.1)
    finally:
        monitor.close()
        failing.close(timeout_s=10)
    assert len(records) >= 2 and {r.topic for r in records} == {"audit.h"}
    assert {r.key for r in records} == {f"aggregator|{group}/{events}[0]".encode()}
    assert {decode_health(r.value)["metrics"]["lag_events"] for r in records} == {3.0}
    assert failing.failures >= 1 and failing.drain() == []
