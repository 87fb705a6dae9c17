"""The one producer wrapper (pipeline.producer) against a fake librdkafka client."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.model import KafkaRecord
from pipeline.producer import DeliveryError, DeliveryTracker, KafkaProducer


class FakeClient:
    """produce() raises BufferError ``full`` times first; poll/flush report every queued
    record, failing those whose value is b"fail"; ``stuck`` records never get a report."""

    def __init__(self, full: int = 0, stuck: int = 0) -> None:
        self.full, self.stuck = full, stuck
        self.queue: list[tuple[Any, bytes | None]] = []
        self.sent: list[tuple[str, bytes | None, bytes | None, Any]] = []
        self.polls: list[float] = []
        self.calls: list[str] = []

    def produce(self, topic: str, *, value: bytes | None, key: bytes | None, headers: Any,
                on_delivery: Any) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("queue full")
        self.sent.append((topic, key, value, headers))
        self.queue.append((on_delivery, value))

    def poll(self, timeout: float = 0) -> int:
        self.polls.append(timeout)
        queue, self.queue = self.queue, []
        for callback, value in queue:
            err = KafkaError(KafkaError._MSG_TIMED_OUT) if value == b"fail" else None
            callback(err, value)
        return len(queue)

    def flush(self, timeout: float = 0) -> int:
        self.poll(timeout)
        return self.stuck

    def __getattr__(self, name: str) -> Any:  # transactional calls are recorded
        return lambda *args: self.calls.append(name)


def wrapper(client: FakeClient) -> KafkaProducer:
    producer = KafkaProducer({"bootstrap.servers": "localhost:1"})
    producer.client = client
    return producer


def test_queue_full_serves_reports_and_retries_never_drops() -> None:
    client = FakeClient(full=3)
    producer = wrapper(client)
    producer.produce("t", b"v", b"k", [("h", b"1")])
    assert client.sent == [("t", b"k", b"v", [("h", b"1")])]
    assert len(client.polls) == 3 and all(p > 0 for p in client.polls)


def test_flush_raises_the_named_error_with_failures_then_clears_them() -> None:
    class MyError(DeliveryError):
        pass

    client = FakeClient()
    producer = wrapper(client)
    producer.produce_record(KafkaRecord("t", b"ok", headers=(("a", b"b"),)))
    producer.produce("t", b"fail")
    with pytest.raises(MyError, match="0 notices undelivered, 1 failed") as info:
        producer.flush(1.0, what="notices", error=MyError)
    assert info.value.remaining == 0 and len(info.value.failures) == 1
    assert producer.tracker.delivered == 1
    assert client.sent[0][3] == [("a", b"b")]
    producer.flush(1.0)  # failures were taken by the previous flush


def test_flush_raises_when_records_stay_queued() -> None:
    producer = wrapper(FakeClient(stuck=2))
    with pytest.raises(DeliveryError) as info:
        producer.flush(0.1)
    assert info.value.remaining == 2 and info.value.failures == ()
    assert producer.wait(0.1) == 2  # wait() reports, never raises


def test_a_callers_own_callback_replaces_the_tracker() -> None:
    seen: list[Any] = []
    producer = wrapper(FakeClient())
    producer.produce("t", b"fail", on_delivery=lambda err, _msg: seen.append(err))
    producer.flush(1.0)  # the failure went to the caller's callback, not the tracker
    assert len(seen) == 1 and seen[0] is not None


def test_transactional_commit_sends_offsets_and_reopens() -> None:
    producer = wrapper(FakeClient())
    producer.transactional = True
    producer.commit({("t", 0): 5}, object(), 1.0)
    assert producer.client.calls == ["send_offsets_to_transaction", "commit_transaction",
                                     "begin_transaction"]
    producer.produce("t", b"fail")
    producer.poll()
    with pytest.raises(DeliveryError, match="committed transaction"):
        producer.commit({}, object(), 1.0)


def test_close_aborts_a_transaction_and_survives_abort_errors() -> None:
    client = FakeClient()
    producer = wrapper(client)
    producer.transactional = True

    def abort(_timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._FENCED))

    client.abort_transaction = abort  # type: ignore[attr-defined]
    producer.close(1.0)  # logged, not raised
    assert client.calls == []


def test_tracker_counts_successes_and_hands_failures_over_once() -> None:
    tracker = DeliveryTracker()
    err = KafkaError(KafkaError._MSG_TIMED_OUT)
    for e in (None, err, None):
        tracker.on_delivery(e, None)  # type: ignore[arg-type]
    assert tracker.delivered == 2 and tracker.take_failures() == [err]
    assert tracker.take_failures() == []
