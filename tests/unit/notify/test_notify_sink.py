"""The notifier sink: delivered or dead-lettered before flush returns; held offsets for
deferred alerts; a failed DLQ write keeps what is pending without re-delivering the rest."""

from __future__ import annotations

import pytest

from consumers.notifier.sink import NotifierSink
from pipeline.model import Event
from pipeline.notify.config import KafkaRoute, Retry
from pipeline.notify.fanout import Fanout, Item, Lane
from pipeline.notify.retry import DeliveryFailed, RouteGone
from pipeline.producer import DeliveryError


class FakeProducer:
    def __init__(self, fail_flushes: int = 0) -> None:
        self.records: list = []
        self.produced: list = []
        self.fail_flushes = fail_flushes

    def produce_record(self, record) -> None:
        self.records.append(record)

    def produce(self, topic, value, key=None, headers=None) -> None:
        self.produced.append((topic, value, key))

    def flush(self, timeout_s, *, what="records") -> None:
        if self.fail_flushes:
            self.fail_flushes -= 1
            raise DeliveryError(f"1 {what} undelivered")

    def close(self, timeout_s) -> None:
        pass


class Dest:
    def __init__(self, errors=()) -> None:
        self.errors, self.sent = list(errors), []

    def send(self, alert, raw) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(alert["alert_id"])

    def close(self) -> None:
        pass


def lane(name: str, dest: Dest, budget_ms: int = 50) -> Lane:
    return Lane(KafkaRoute(type="kafka", name=name, topic=name,
                           retry=Retry(budget_ms=budget_ms, initial_backoff_ms=1,
                                       max_backoff_ms=2)), dest)


def event(offset: int, partition: int = 0) -> Event:
    return Event(key=b"k", value=b"raw", timestamp_ms=0, topic="alerts", partition=partition,
                 offset=offset, headers=(("h", b"v"),), raw=b"raw")


def sink_with(*lanes: Lane, producer: FakeProducer | None = None,
              fanout: Fanout | None = None) -> NotifierSink:
    return NotifierSink(fanout or Fanout(list(lanes)), producer or FakeProducer(),
                        dlq_topic="dlq", health_topic="health")


def test_failures_are_dead_lettered_with_route_and_reason(make_alert) -> None:
    ok, down = Dest(), Dest([DeliveryFailed("HTTP 503")] * 100)
    producer = FakeProducer()
    sink = sink_with(lane("ok", ok), lane("down", down), producer=producer)
    sink.add(Item(make_alert(), b"raw-avro"), event(7))
    sink.flush()
    assert len(ok.sent) == 1 and len(producer.records) == 1
    record = producer.records[0]
    headers = dict(record.headers)
    assert record.topic == "dlq" and record.value == b"raw-avro" and record.key == b"k"
    assert headers["x-notifier-route"] == b"down" and b"HTTP 503" in headers["x-error"]
    assert headers["x-source-offset"] == b"7" and headers["h"] == b"v"
    assert sink.summary()["routes"]["down"]["dead_lettered"] == 1
    assert not sink.should_flush(0) and sink.held() == {}


def test_a_failed_dlq_write_raises_and_the_retry_skips_delivered_routes(make_alert) -> None:
    # Enough failures for two flushes of 50 ms at 1-2 ms backoff (100 ran out: a flake).
    ok, down = Dest(), Dest([DeliveryFailed("refused")] * 10_000)
    producer = FakeProducer(fail_flushes=1)
    sink = sink_with(lane("ok", ok), lane("down", down), producer=producer)
    sink.add(Item(make_alert(), b"raw"), event(3))
    with pytest.raises(DeliveryError):
        sink.flush()
    assert sink.should_flush(0)
    sink.flush()
    assert len(ok.sent) == 1  # not re-delivered by the retry
    assert [dict(r.headers)["x-notifier-route"] for r in producer.records] == [b"down", b"down"]
    assert sink.summary()["routes"]["down"]["dead_lettered"] == 1


def test_deferred_alerts_hold_their_offsets(make_alert) -> None:
    now = [0.0]

    class Slow(Dest):  # each send takes 30 ms of the fake clock
        def send(self, alert, raw) -> None:
            now[0] += 0.03
            super().send(alert, raw)
    slow = Slow()
    sink = sink_with(fanout=Fanout([lane("slow", slow, budget_ms=40)], clock=lambda: now[0]))
    for offset in range(5):
        sink.add(Item(make_alert(key=f"k{offset}"), b"raw"), event(offset, partition=1))
    sink.flush()
    held = sink.held()
    assert len(slow.sent) == 2 and held == {("alerts", 1): 2}
    sink.release([("alerts", 1)])
    assert sink.held() == {} and not sink.should_flush(0)


def test_a_gone_route_writes_one_health_record(make_alert) -> None:
    producer = FakeProducer()
    sink = sink_with(lane("gone", Dest([RouteGone("HTTP 410 Gone")])), producer=producer)
    for offset in range(3):
        sink.add(Item(make_alert(key=f"k{offset}"), b"raw"), event(offset))
    sink.flush()
    assert [(t, k) for t, _v, k in producer.produced] == [("health", b"notifier|gone")]
    assert len(producer.records) == 3


def test_alerts_no_route_takes_are_counted(make_alert) -> None:
    sink = sink_with(lane("a", Dest()))
    sink.add(Item(make_alert(update=1), b"raw"), event(0))  # openings only by default
    assert sink.summary()["unrouted"] == 1 and not sink.should_flush(0)
