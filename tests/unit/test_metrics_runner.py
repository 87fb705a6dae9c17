"""The Runner reports to its DaemonMetrics at its consume, dead-letter, flush, commit and
assignment points: driven against fake librdkafka clients (no I/O), the exported samples move
with the Runner's own RunStats."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from pipeline.config import RunnerConfig
from pipeline.metrics import names
from pipeline.metrics.registry import DaemonMetrics
from pipeline.model import Event, SinkBase
from pipeline.runner import Runner


class Msg:
    """The parts of a confluent_kafka.Message the Runner reads."""

    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> None:
        return None

    def value(self) -> bytes:
        return self._v

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


class FakeConsumer:
    def __init__(self, polls: list[list[Msg]]) -> None:
        self.polls, self.commits = polls, 0

    def consume(self, _n: int, _timeout: float) -> list[Msg]:
        return self.polls.pop(0) if self.polls else []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits += 1

    def seek(self, _tp: TopicPartition) -> None:
        return None

    def pause(self, _tps: list[TopicPartition]) -> None:
        return None


class FakeProducerClient:
    """produce() reports each record at the next poll/flush; values b"lost" fail."""

    def __init__(self) -> None:
        self.queued: list[tuple[bytes | None, Any]] = []
        self.sent: list[bytes | None] = []

    def produce(self, _topic: str, *, value: bytes | None, key: Any, headers: Any,
                on_delivery: Any, **_: Any) -> None:
        self.queued.append((value, on_delivery))

    def poll(self, _timeout: float = 0) -> int:
        for value, callback in self.queued:
            self.sent.append(value)
            callback(KafkaError(KafkaError._MSG_TIMED_OUT) if value == b"lost" else None, None)
        self.queued = []
        return 0

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


class ListSink(SinkBase):
    """Buffers values; flush raises while ``failing``."""

    def __init__(self) -> None:
        self.buffer: list[Any] = []
        self.durable: list[Any] = []
        self.failing = False

    def add(self, item: Any, source: Event | None) -> None:
        self.buffer.append(item)

    def should_flush(self, now_ms: int) -> bool:
        return False

    def flush(self) -> None:
        if self.failing:
            raise ConnectionError("lake unreachable")
        self.durable += self.buffer
        self.buffer = []

    def discard(self) -> None:
        self.buffer = []


def poison_decoder(raw: bytes | None) -> bytes | None:
    if raw == b"poison":
        raise ValueError("not a record")
    return raw


def make_runner(polls: list[list[Msg]], sink: ListSink) -> tuple[Runner, FakeConsumer,
                                                                 FakeProducerClient]:
    metrics = DaemonMetrics("archiver", "g")
    runner = Runner(consumer_conf={"bootstrap.servers": "localhost:1", "group.id": "g"},
                    producer_conf={"bootstrap.servers": "localhost:1"}, topics=["in"],
                    processor=None, sink=sink,
                    config=RunnerConfig(flush_retry_budget_ms=0, flush_retry_backoff_ms=1),
                    dlq_topic="dlq", decode=poison_decoder, metrics=metrics)
    consumer, client = FakeConsumer(polls), FakeProducerClient()
    runner._consumer.close()
    runner._consumer = consumer  # type: ignore[assignment]
    runner._producer.client = client
    return runner, consumer, client


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} not exported"
    return value


def test_consumed_processed_and_dead_letters_follow_the_runner() -> None:
    polls = [[Msg("in", 0, 0, b"a"), Msg("in", 0, 1, b"poison"), Msg("in", 1, 0, b"b")],
             [Msg("in", 1, 1, b"c")]]
    runner, _, client = make_runner(polls, ListSink())
    runner._poll_batch()
    runner._poll_batch()
    reg = runner.metrics.registry
    by_partition = [sample(reg, names.CONSUMED, daemon="archiver", topic="in", partition=p)
                    for p in ("0", "1")]
    assert by_partition == [2, 2]
    assert sum(by_partition) == runner.stats.consumed
    assert sample(reg, names.PROCESSED, daemon="archiver") == runner.stats.processed == 3
    assert sample(reg, names.DEAD_LETTERS, daemon="archiver", reason="ValueError") == 1
    client.poll()
    assert client.sent == [b"poison"]  # the dead letter really went out


def test_a_commit_cycle_is_timed_and_counted_and_readiness_sees_it() -> None:
    sink = ListSink()
    runner, consumer, _ = make_runner([[Msg("in", 0, 0, b"a")]], sink)
    runner._on_assign(None, [TopicPartition("in", 0)])  # type: ignore[arg-type]
    runner._poll_batch()
    assert runner._commit_cycle()
    reg = runner.metrics.registry
    assert consumer.commits == 1 == sample(reg, names.COMMITS, daemon="archiver")
    assert sample(reg, names.FLUSH_SECONDS + "_count", daemon="archiver") == 1
    assert sample(reg, names.ASSIGNED, daemon="archiver") == 1
    state = runner.metrics.state
    assert state.assigned == 1 and state.last_good_flush_s is not None
    assert state.flush_error is None


def test_a_failing_flush_is_counted_with_its_error() -> None:
    sink = ListSink()
    runner, consumer, _ = make_runner([[Msg("in", 0, 0, b"a")]], sink)
    runner._poll_batch()
    sink.failing = True
    assert not runner._commit_cycle()
    reg = runner.metrics.registry
    assert sample(reg, names.FLUSH_FAILURES, daemon="archiver") == 1
    assert sample(reg, names.FLUSH_SECONDS + "_count", daemon="archiver") == 1
    assert consumer.commits == 0
    state = runner.metrics.state
    assert state.flush_error == "ConnectionError: lake unreachable"
    assert state.flush_failing_since_s is not None


def test_undelivered_outputs_count_as_delivery_errors() -> None:
    runner, _, _ = make_runner([], ListSink())
    # The only record produced (a dead letter carrying the value b"lost") fails delivery.
    runner._dead_letter(Msg("in", 0, 1, b"lost"), ValueError("x"))  # type: ignore[arg-type]
    assert not runner._commit_cycle()
    reg = runner.metrics.registry
    assert sample(reg, names.DELIVERY_ERRORS, daemon="archiver") == 1
    assert (runner.metrics.state.flush_error or "").startswith("DeliveryError")


def test_a_poll_cut_short_by_an_unavailable_input_counts_what_the_stats_count() -> None:
    from pipeline.model import Unavailable

    def decode(raw: bytes | None) -> bytes | None:
        if raw == b"later":
            raise Unavailable("changelog read timed out")
        return raw

    polls = [[Msg("in", 0, 0, b"a"), Msg("in", 0, 1, b"later"), Msg("in", 1, 0, b"b")]]
    runner, _, _ = make_runner(polls, ListSink())
    runner._intake._decode = decode
    runner._poll_batch()
    consumed = sample(runner.metrics.registry, names.CONSUMED, daemon="archiver", topic="in",
                      partition="0")
    assert consumed == runner.stats.consumed == 1  # "a" only: the rest is read again
