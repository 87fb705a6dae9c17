"""Where ``lake compact`` announces what it did: the deliveries topic (Delivery notices of the
new objects, then the Compaction notice), through an idempotent, acks=all producer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pipeline.producer import DeliveryError, KafkaProducer


class NoticeError(DeliveryError):
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
        self._producer = KafkaProducer(producer_conf)
        self.topic, self._timeout_s = topic, timeout_s
        self.published = 0

    def publish(self, key: str, value: bytes) -> None:
        self._producer.produce(self.topic, value, key.encode())
        self.published += 1

    def flush(self) -> None:
        self._producer.flush(self._timeout_s, what=f"notice(s) to {self.topic}",
                             error=NoticeError)
