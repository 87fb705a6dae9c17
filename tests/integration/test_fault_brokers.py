"""No loss, no duplicates: an idempotent acks=all producer survives a broker SIGKILL and restart.

Three KRaft nodes (each broker+controller), topic RF 3 / min ISR 2. While 100,000 numbered
messages are produced, the leader of partition 0 is SIGKILLed after ~30k deliveries and restarted
after ~60k. Every delivery must succeed and the topic must then hold each number exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.dev import ClusterInfo, down, kill_node, start_node, up

pytestmark = [pytest.mark.integration, pytest.mark.fault]

TOTAL = 100_000
KILL_AT = 30_000
RESTART_AT = 60_000
PARTITIONS = 6
RATE_PER_S = 4_000  # paced so the kill and the restart both land mid-run
MAX_IN_FLIGHT = 5_000
LOG = logging.getLogger("test_fault_brokers")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClusterInfo, Path]]:
    state_dir = tmp_path_factory.mktemp("fault-cluster")
    try:
        yield up(state_dir, brokers=3, timeout_s=120), state_dir
    finally:
        down(state_dir)


class Deliveries:
    """Counts delivery reports; keeps the first few failures for the assertion message."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed: list[str] = []

    def __call__(self, err: KafkaError | None, msg: object) -> None:
        if err is None:
            self.ok += 1
        else:
            self.failed.append(str(err))

    @property
    def done(self) -> int:
        return self.ok + len(self.failed)


def _conf(info: ClusterInfo, **extra: Any) -> dict[str, Any]:
    """librdkafka settings for ``info`` plus ``extra`` (logs go to LOG, not stderr)."""
    return {**info.client_config(), "logger": LOG, **extra}


def _create_topic(info: ClusterInfo) -> str:
    topic = f"fault.numbers.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(_conf(info))
    new = NewTopic(topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(timeout=60)
    return topic


def _leader_of_partition0(info: ClusterInfo, topic: str) -> int:
    """The leader of partition 0, once every broker's metadata has the new topic (a broker
    may answer before the creation has propagated to it)."""
    admin = AdminClient(_conf(info))
    nodes = {b.node_id for b in info.brokers}
    deadline = time.monotonic() + 30
    while True:
        partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
        if 0 in partitions and partitions[0].leader in nodes:
            leader: int = partitions[0].leader
            return leader
        assert time.monotonic() < deadline, f"no leader for {topic}[0]: {partitions}"
        time.sleep(0.2)


def _produce_with_faults(info: ClusterInfo, state_dir: Path, topic: str) -> Deliveries:
    victim = _leader_of_partition0(info, topic)
    producer = Producer(_conf(info, **{"enable.idempotence": True, "acks": "all",
                                       "linger.ms": 5, "message.timeout.ms": 120_000}))
    reports = Deliveries()
    restart: threading.Thread | None = None
    restart_errors: list[BaseException] = []

    def restart_victim() -> None:
        try:
            start_node(state_dir, victim, wait_s=90)
        except BaseException as exc:
            restart_errors.append(exc)

    killed = False
    start = time.monotonic()
    for i in range(TOTAL):
        while i - reports.done >= MAX_IN_FLIGHT or i / RATE_PER_S > time.monotonic() - start:
            producer.poll(0.01)
        # Keyed, so every partition (including the victim's) keeps receiving messages.
        producer.produce(topic, key=str(i).encode(), value=str(i).encode(), on_delivery=reports)
        producer.poll(0)
        if not killed and reports.ok >= KILL_AT:
            kill_node(state_dir, victim)
            killed = True
            print(f"t={time.monotonic() - start:.1f}s killed node {victim} at {reports.ok} ok")
        if killed and restart is None and reports.ok >= RESTART_AT:
            restart = threading.Thread(target=restart_victim, daemon=True)
            restart.start()
            print(f"t={time.monotonic() - start:.1f}s restarting node {victim} at {reports.ok} ok")
    assert producer.flush(150) == 0, "messages still undelivered after 150 s"
    print(f"t={time.monotonic() - start:.1f}s all {reports.done} delivery reports in")
    assert killed and restart is not None, "the fault was not injected mid-run"
    restart.join(120)
    print(f"t={time.monotonic() - start:.1f}s node {victim} back in the cluster metadata")
    assert not restart.is_alive() and not restart_errors, restart_errors
    return reports


def _consume_all(info: ClusterInfo, topic: str) -> list[int]:
    consumer = Consumer(_conf(info, **{"group.id": f"verify-{topic}", "enable.auto.commit": False,
                                       "enable.partition.eof": True}))
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(PARTITIONS)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        pending = {p for p, end in ends.items() if end > 0}
        values: list[int] = []
        deadline = time.monotonic() + 90
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    pytest.fail(f"consumer error: {err}")
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None
                if err is None:
                    values.append(int(msg.value() or b""))
                    offset += 1
                if offset >= ends[partition]:
                    pending.discard(partition)
        assert not pending, f"partitions {pending} not read to their end within 90 s"
        assert sum(ends.values()) == TOTAL, f"log end offsets {ends} do not sum to {TOTAL}"
        return values
    finally:
        consumer.close()


def test_no_loss_no_duplicates_across_broker_kill(cluster: tuple[ClusterInfo, Path]) -> None:
    info, state_dir = cluster
    assert len(info.brokers) == 3
    topic = _create_topic(info)
    reports = _produce_with_faults(info, state_dir, topic)
    assert reports.failed == [], f"{len(reports.failed)} failed deliveries: {reports.failed[:5]}"
    assert reports.ok == TOTAL
    values = _consume_all(info, topic)
    assert len(values) == TOTAL
    assert set(values) == set(range(TOTAL))
