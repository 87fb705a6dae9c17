"""KafkaBatch: many records for one topic, produced by the producer wrapper in one loop and
routed by the Runner like KafkaRecords (against a fake librdkafka client)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError

from pipeline.config import RunnerConfig
from pipeline.model import KafkaBatch
from pipeline.producer import KafkaProducer
from pipeline.runner import Runner


class FakeClient:
    """produce() raises BufferError ``full`` times first; poll/flush report every queued record
    with a callback, failing those whose value is b"fail"."""

    def __init__(self, full: int = 0) -> None:
        self.full = full
        self.sent: list[tuple[str, bytes | None, bytes | None, Any, Any]] = []
        self.polls = 0

    def produce(self, topic: str, *, value: bytes | None, key: bytes | None, headers: Any,
                on_delivery: Any) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("queue full")
        self.sent.append((topic, value, key, headers, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        for _, value, _, _, callback in self.sent:
            if callback is not None:
                callback(KafkaError(KafkaError._MSG_TIMED_OUT) if value == b"fail" else None,
                         None)
        return 0


def producer(client: FakeClient, transactional: bool = False) -> KafkaProducer:
    wrapper = KafkaProducer({"bootstrap.servers": "localhost:1"})
    wrapper.client, wrapper.transactional = client, transactional
    return wrapper


BATCH = KafkaBatch("t", [b"a", b"fail", None], [b"k1", None, b"k3"],
                   [[("h", b"1")], [], [("h", b"3")]])


def test_every_record_is_produced_in_order_and_tracked() -> None:
    client = FakeClient()
    wrapper = producer(client)
    wrapper.produce_batch(BATCH)
    assert [(t, v, k, h) for t, v, k, h, _ in client.sent] == [
        ("t", b"a", b"k1", [("h", b"1")]), ("t", b"fail", None, []),
        ("t", None, b"k3", [("h", b"3")])]
    client.poll()
    assert wrapper.tracker.delivered == 2 and len(wrapper.tracker.take_failures()) == 1


def test_a_full_queue_is_waited_for_and_nothing_dropped() -> None:
    client = FakeClient(full=2)
    producer(client).produce_batch(KafkaBatch("t", [b"a", b"b"], [None, None]))
    assert [(v, h) for _, v, _, h, _ in client.sent] == [(b"a", None), (b"b", None)]
    assert client.polls >= 1  # served delivery reports while waiting for space


def test_transactional_batches_have_no_per_record_callback() -> None:
    client = FakeClient()
    producer(client, transactional=True).produce_batch(BATCH)
    assert len(client.sent) == 3 and {cb for *_, cb in client.sent} == {None}


def test_the_runner_routes_a_batch_to_its_producer_and_counts_its_records() -> None:
    runner = Runner(consumer_conf={"bootstrap.servers": "localhost:1", "group.id": "g"},
                    producer_conf={"bootstrap.servers": "localhost:1"}, topics=["in"],
                    processor=None, sink=object(),  # type: ignore[arg-type]
                    config=RunnerConfig(), dlq_topic="dlq")
    client = FakeClient()
    runner._producer.client = client
    runner._route(BATCH, None)
    assert [v for _, v, *_ in client.sent] == [b"a", b"fail", None]
    assert runner.stats.outputs == 3
