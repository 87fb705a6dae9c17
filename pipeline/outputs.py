"""The Runner's producer: outputs and dead letters, optionally inside Kafka transactions.

A thin layer over :class:`pipeline.producer.KafkaProducer` that keeps the Runner's interface
(records as :class:`KafkaRecord`, failures as :class:`OutputError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.model import KafkaRecord, TopicPartitionKey
from pipeline.producer import DeliveryError, KafkaProducer


class OutputError(DeliveryError):
    """Outputs could not be made durable (delivery failed or timed out)."""


class OutputProducer:
    """Produces :class:`KafkaRecord` outputs. With ``transactional_id`` every produce happens
    inside an open transaction that :meth:`commit` closes together with the consumer offsets."""

    def __init__(self, conf: Mapping[str, Any], transactional_id: str | None = None) -> None:
        self._producer = KafkaProducer(conf, transactional_id)
        self.transactional = self._producer.transactional

    def produce(self, record: KafkaRecord) -> None:
        """Queue one record; waits for queue space instead of dropping it."""
        self._producer.produce_record(record)

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        """Wait until every queued record is delivered; raises :class:`OutputError` otherwise."""
        self._producer.flush(timeout_s, error=OutputError)

    def commit(self, offsets: Mapping[TopicPartitionKey, int], group_metadata: Any,
               timeout_s: float) -> None:
        """Commit the open transaction with ``offsets`` and open the next one.
        Raises KafkaException; the caller then calls :meth:`abort_and_rebuild`."""
        self._producer.commit(offsets, group_metadata, timeout_s, error=OutputError)

    def abort_and_rebuild(self, timeout_s: float) -> None:
        """Abort the open transaction (best effort) and replace the producer, which fences
        any zombie with the same transactional id."""
        self._producer.abort_and_rebuild(timeout_s)

    def close(self, timeout_s: float) -> None:
        """Abort an open transaction (nothing uncommitted may become visible) or flush."""
        self._producer.close(timeout_s)
