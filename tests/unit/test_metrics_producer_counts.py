"""A producer's metrics (no I/O): the Publisher's counts mapped to Prometheus families (equal to
its summary, dead letters and delivery errors by reason), and its /healthz and /readyz."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_metrics_health import StaticProber, call

from pipeline.metrics import names
from pipeline.metrics.config import MetricsConfig
from pipeline.metrics.producer import (
    PENDING,
    PRODUCED_BYTES,
    PRODUCER_NAMES,
    READ,
    READ_BYTES,
    ProducerCounts,
    ProducerMetrics,
    daemon_label,
)
from pipeline.metrics.server import health_app
from producers.files import RawRecord
from producers.publisher import Batch, Publisher

CFG = MetricsConfig(stall_after_s=30)
GOOD = {"eventName": "ListBuckets", "awsRegion": "eu-west-1", "eventTime": "2024-01-01T00:00:00Z",
        "recipientAccountId": "123456789012"}


class FailingProducer:
    """produce() queues; poll/flush report each record delivered, except values containing
    ``lost`` (failed with _MSG_TIMED_OUT). ``hold`` keeps reports queued."""

    def __init__(self) -> None:
        self.queue: list[tuple[Any, bytes]] = []
        self.hold = False

    def produce(self, topic: str, *, value: bytes, key: bytes | None, headers: list[Any],
                on_delivery: Any) -> None:
        self.queue.append((on_delivery, value))

    def poll(self, _timeout: float = 0) -> int:
        if self.hold:
            return 0
        queue, self.queue = self.queue, []
        for callback, value in queue:
            lost = b"lost" in value
            callback(KafkaError(KafkaError._MSG_TIMED_OUT) if lost else None, value)
        return len(queue)

    def flush(self, _timeout: float = 0) -> int:
        self.poll()
        return len(self.queue)


def publisher() -> tuple[Publisher, FailingProducer]:
    pub = Publisher({"bootstrap.servers": "localhost:1"}, events_topic="ev", dlq_topic="dlq",
                    source="test", producer_id="p1", clock_ms=lambda: 1_700_000_000_000)
    fake = FailingProducer()
    pub._producer = fake
    return pub, fake


def record(location: str, value: Any, raw: bytes = b"{}") -> RawRecord:
    return RawRecord(location, raw, value)


def scraped(metrics: ProducerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_publishers_counts_are_exported_as_its_summary_counts_them() -> None:
    pub, fake = publisher()
    metrics = ProducerMetrics(daemon_label("generator"), "ev")
    metrics.watch(pub.counts)
    for i in range(3):
        pub.publish(record(f"good#{i}", GOOD))
    pub.publish(record("lost#1", {**GOOD, "eventName": "lost"}))
    pub.publish(RawRecord("bad#1", b"{", None, "invalid JSON", "JSONDecodeError"))
    pub.publish(record("bad#2", [1], b"[1]"))  # not an object: the mapping refuses it
    batch = Batch()
    pub.publish(RawRecord("http:1", b"x", None, "invalid JSON", "JSONDecodeError"), batch)
    fake.poll()
    fake.hold = True
    pub.publish(record("pending#1", GOOD))
    stats = pub.stats.as_dict()
    assert (stats["produced"], stats["failed"], stats["dead_lettered"], stats["pending"]) == (
        3, 1, 3, 1)
    d = (("daemon", "producer-generator"),)
    got = scraped(metrics)
    assert got[(READ, d)] == stats["read"] == 8
    assert got[(READ_BYTES, d)] == stats["bytes_in"]
    assert got[(names.PRODUCED, (*d, ("topic", "ev")))] == stats["produced"]
    assert got[(names.OUTPUTS, d)] == stats["produced"]
    assert got[(PRODUCED_BYTES, (*d, ("topic", "ev")))] == stats["bytes_out"] > 0
    assert got[(PENDING, d)] == stats["pending"]
    assert got[(names.DELIVERY_ERRORS, (*d, ("reason", "_MSG_TIMED_OUT")))] == stats["failed"]
    dead = {dict(labels)["reason"]: v for (name, labels), v in got.items()
            if name == names.DEAD_LETTERS}
    assert sum(dead.values()) == stats["dead_lettered"]
    assert dead["JSONDecodeError"] == 2  # one without a batch, one in the HTTP batch
    assert batch.dead_lettered == 1
    assert {name for name, _ in got} <= PRODUCER_NAMES


def test_nothing_watched_exports_zeros() -> None:
    got = scraped(ProducerMetrics("producer-x", "ev"))
    assert got[(READ, (("daemon", "producer-x"),))] == 0
    assert got[(PENDING, (("daemon", "producer-x"),))] == 0


def test_alive_while_the_produce_loop_polls() -> None:
    pub, _ = publisher()
    metrics = ProducerMetrics("producer-generator", "ev")
    metrics.watch(pub.counts)
    assert metrics.liveness_problems(0.0, CFG) == ["the produce loop has not started"]
    pub.poll()
    turned = pub.counts().last_turn_s
    assert turned is not None
    assert metrics.liveness_problems(turned + 29, CFG) == []
    assert metrics.liveness_problems(turned + 31, CFG) == [
        "the produce loop has not turned for 31s (stall_after_s 30)"]


def counts(last_turn_s: float | None = 100.0, error: str | None = None) -> ProducerCounts:
    return ProducerCounts(last_turn_s=last_turn_s, last_delivery_error=error)


def test_ready_needs_reachable_kafka_and_succeeding_deliveries() -> None:
    metrics = ProducerMetrics("producer-generator", "ev")
    metrics.watch(counts)
    assert metrics.readiness_problems({"kafka": None}, 100.0, CFG) == []
    metrics.kafka_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert metrics.readiness_problems({"kafka": "KafkaException: timed out"}, 100.0, CFG) == [
        "kafka not reachable: KafkaException: timed out; the producer's last error: "
        "KafkaError{code=_ALL_BROKERS_DOWN,val=-187,str=\"1/1 brokers are down\"}"]
    assert scraped(metrics)[(names.KAFKA_ERRORS, (("daemon", "producer-generator"),))] == 1
    metrics.watch(lambda: counts(error="Local: Message timed out"))
    assert metrics.readiness_problems({"kafka": None}, 100.0, CFG) == [
        "deliveries failing: Local: Message timed out"]


def test_a_delivery_error_is_cleared_by_the_next_success() -> None:
    pub, fake = publisher()
    pub.publish(record("lost#1", {**GOOD, "eventName": "lost"}))
    fake.poll()
    assert pub.counts().last_delivery_error == "Local: Message timed out (_MSG_TIMED_OUT)"
    pub.publish(record("good#1", GOOD))
    fake.poll()
    assert pub.counts().last_delivery_error is None


def test_the_endpoint_serves_a_producer() -> None:
    metrics = ProducerMetrics("producer-generator", "ev")
    metrics.watch(counts)
    app = health_app(metrics, StaticProber({"kafka": "LookupError: no metadata for topic ev"}), CFG,
                     clock=lambda: 110.0)
    assert call(app, "/healthz") == ("200 OK", "ok\n")
    assert call(app, "/readyz") == ("503 Service Unavailable",
                                    "kafka not reachable: LookupError: no metadata for topic ev\n")
    status, text = call(app, "/metrics")
    assert status.startswith("200") and "trailpipe_records_produced_total" in text
