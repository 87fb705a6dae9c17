"""Where ``lake compact`` announces what it did: the deliveries topic (Delivery notices of the
new objects, then the Compaction notice), through an idempotent, acks=all producer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer


class NoticeError(Exception):
    """Notices could not be made durable on Kafka."""


class Notices(Protocol):
    def publish(self, key: str, value: bytes) -> None:
        """Queue one notice (durable after :meth:`flush`)."""
        ...

    def flush(self) -> None:
        """Wait until every queued notice is acknowledged; raises :class:`NoticeError`."""
        ...


class KafkaNotices:
    """:class:`Notices` on a Kafka topic, keyed by object key (as the archiver's)."""

    def __init__(self, producer_conf: Mapping[str, Any], topic: str, *,
                 timeout_s: float = 30.0) -> None:
        self._producer = Producer(dict(producer_conf))
        self.topic, self._timeout_s = topic, timeout_s
        self._failures: list[KafkaError] = []
        self.published = 0

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failures.append(err)

    def publish(self, key: str, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key.encode(),
                                       on_delivery=self._on_delivery)
                self.published += 1
                return
            except BufferError:
                self._producer.poll(0.05)

    def flush(self) -> None:
        remaining = self._producer.flush(self._timeout_s)
        failures, self._failures = self._failures, []
        if remaining or failures:
            raise NoticeError(f"{remaining} notice(s) undelivered to {self.topic}, "
                              f"{len(failures)} failed: {[str(f) for f in failures[:3]]}")
