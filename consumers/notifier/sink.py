"""The notifier's sink: holds decoded alerts and fans them out on flush.

At-least-once: ``flush`` returns only when every held alert was delivered to every route that
matches it, or dead-lettered for that route: the DLQ record (the alert's raw key, Avro value
and headers, in :mod:`pipeline.deadletter`'s format, plus ``x-notifier-route``) is produced
with the sink's own idempotent producer and acknowledged before ``flush`` returns. The Runner
commits the alerts' offsets only after that, so a crash re-delivers (same idempotency keys)
rather than loses. When the DLQ cannot be written ``flush`` raises and keeps what is still
pending (routes already delivered are not tried again by the retry). Alerts a healthy but
slow route deferred (its budget for the flush was spent) stay held: :meth:`held` reports their
offsets, so the Runner commits nothing from there on, and the next flush goes on with them.

A route disabled by HTTP 410 also gets one health record on ``[topics] health`` (key
``notifier|<route>``), produced with the dead letters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.deadletter import dead_letter
from pipeline.health.record import encode_health, health_datum, health_key
from pipeline.logs import get_logger
from pipeline.model import Event, SinkBase, TopicPartitionKey
from pipeline.notify.fanout import Fanout, Item, Result
from pipeline.producer import KafkaProducer

log = get_logger("consumers.notifier")

ERROR_TYPE = "NotifierUndeliverable"
ROUTE_HEADER = "x-notifier-route"


@dataclass(slots=True)
class _Held:
    item: Item
    source: Event | None
    pending: set[str]


class NotifierSink(SinkBase):
    """Fans held alerts out through ``fanout``; dead letters and health records go through
    ``producer`` (see the module docstring)."""

    def __init__(self, fanout: Fanout, producer: KafkaProducer, *, dlq_topic: str,
                 health_topic: str, flush_timeout_s: float = 30.0) -> None:
        self._fanout, self._producer = fanout, producer
        self._dlq_topic, self._health_topic = dlq_topic, health_topic
        self._timeout_s = flush_timeout_s
        self._held: list[_Held] = []
        self.unrouted = 0

    def add(self, item: Any, source: Event | None) -> None:
        if not isinstance(item, Item):
            raise TypeError(f"NotifierSink takes Item, not {type(item).__name__}")
        routes = self._fanout.routes_for(item.alert)
        if routes:
            self._held.append(_Held(item, source, set(routes)))
        else:
            self.unrouted += 1

    def should_flush(self, now_ms: int) -> bool:
        return bool(self._held)

    def flush(self) -> None:
        """Deliver or dead-letter every held alert on every matching route (see the module
        docstring); raises DeliveryError when dead letters cannot be made durable."""
        if not self._held:
            return
        by_route = {name: [h for h in self._held if name in h.pending]
                    for name in self._fanout.lanes}
        results = self._fanout.deliver({n: [h.item for h in hs] for n, hs in by_route.items()})
        dead: list[tuple[_Held, str]] = []
        for name, route_results in results.items():
            for held, result in zip(by_route[name], route_results, strict=True):
                if result.deferred:
                    continue
                if result.error is None:
                    held.pending.discard(name)
                else:
                    self._dead_letter(held, name, result)
                    dead.append((held, name))
        self._producer.flush(self._timeout_s, what="dead letters")
        for held, name in dead:
            held.pending.discard(name)
            self._fanout.lanes[name].stats.dead_lettered += 1
        self._held = [h for h in self._held if h.pending]

    def _dead_letter(self, held: _Held, route: str, result: Result) -> None:
        src = held.source
        record = dead_letter(
            dlq_topic=self._dlq_topic, error_type=ERROR_TYPE, error=result.error or "",
            key=src.key if src else held.item.alert["alert_id"].encode(), value=held.item.raw,
            headers=src.headers if src else (), source_topic=src.topic if src else None,
            partition=src.partition if src else None, offset=src.offset if src else None)
        record = dataclasses.replace(
            record, headers=(*record.headers, (ROUTE_HEADER, route.encode())))
        self._producer.produce_record(record)
        if result.gone:
            self._health(route, result.error or "")

    def _health(self, route: str, reason: str) -> None:
        datum = health_datum("notifier", "route_disabled", route,
                             f"route {route} is gone and disabled: {reason}"[:500],
                             stage="route", details={"route": route, "reason": reason})
        log.error("notifier_health", **datum)
        self._producer.produce(self._health_topic, encode_health(datum), health_key(datum))

    def discard(self) -> None:
        self._held.clear()

    def held(self) -> Mapping[TopicPartitionKey, int]:
        """The oldest offset per partition of an alert still pending after a flush."""
        low: dict[TopicPartitionKey, int] = {}
        for h in self._held:
            if h.source is not None and h.source.offset < low.get(h.source.tp, h.source.offset + 1):
                low[h.source.tp] = h.source.offset
        return low

    def release(self, partitions: Collection[TopicPartitionKey]) -> None:
        gone = set(partitions)
        self._held = [h for h in self._held if h.source is None or h.source.tp not in gone]

    def summary(self) -> dict[str, Any]:
        """Per-route counters and the alerts no route took."""
        return {"routes": {n: lane.stats.as_dict() for n, lane in self._fanout.lanes.items()},
                "unrouted": self.unrouted}

    def close(self) -> None:
        self._fanout.close()
        self._producer.close(self._timeout_s)
