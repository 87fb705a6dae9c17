"""The Runner's producer: outputs and dead letters, optionally inside Kafka transactions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException, Producer, TopicPartition

from pipeline.kafka import DeliveryTracker
from pipeline.logs import get_logger
from pipeline.model import KafkaRecord, TopicPartitionKey

log = get_logger("pipeline.outputs")


class OutputError(Exception):
    """Outputs could not be made durable (delivery failed or timed out)."""


class OutputProducer:
    """Produces :class:`KafkaRecord` outputs. With ``transactional_id`` every produce happens
    inside an open transaction that :meth:`commit` closes together with the consumer offsets."""

    def __init__(self, conf: Mapping[str, Any], transactional_id: str | None = None) -> None:
        self._conf = dict(conf)
        self.transactional = transactional_id is not None
        if transactional_id is not None:
            self._conf["transactional.id"] = transactional_id
        self._tracker = DeliveryTracker()
        self._producer = self._build()

    def _build(self) -> Producer:
        producer = Producer(self._conf)
        if self.transactional:
            producer.init_transactions(30)
            producer.begin_transaction()
        return producer

    def produce(self, record: KafkaRecord) -> None:
        """Queue one record; waits for queue space instead of dropping it."""
        while True:
            try:
                self._producer.produce(
                    record.topic, value=record.value, key=record.key,
                    headers=list(record.headers), on_delivery=self._tracker.on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.05)

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        """Wait until every queued record is delivered; raises :class:`OutputError` otherwise."""
        remaining = self._producer.flush(timeout_s)
        failures = self._tracker.take_failures()
        if remaining or failures:
            raise OutputError(f"{remaining} records undelivered, {len(failures)} failed: "
                              f"{[str(f) for f in failures[:3]]}")

    def commit(self, offsets: Mapping[TopicPartitionKey, int], group_metadata: Any,
               timeout_s: float) -> None:
        """Commit the open transaction with ``offsets`` and open the next one.
        Raises KafkaException; the caller then calls :meth:`abort_and_rebuild`."""
        if offsets:
            tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            self._producer.send_offsets_to_transaction(tps, group_metadata, timeout_s)
        self._producer.commit_transaction(timeout_s)
        if self._tracker.take_failures():
            raise OutputError("a record of the committed transaction failed delivery")
        self._producer.begin_transaction()

    def abort_and_rebuild(self, timeout_s: float) -> None:
        """Abort the open transaction (best effort) and replace the producer, which fences
        any zombie with the same transactional id."""
        try:
            self._producer.abort_transaction(timeout_s)
        except KafkaException as exc:
            log.warning("transaction_abort_failed", error=str(exc))
        self._tracker.take_failures()
        self._producer = self._build()
        log.info("producer_rebuilt", transactional=self.transactional)

    def close(self, timeout_s: float) -> None:
        """Abort an open transaction (nothing uncommitted may become visible) or flush."""
        if self.transactional:
            try:
                self._producer.abort_transaction(timeout_s)
            except KafkaException as exc:
                log.warning("transaction_abort_failed", error=str(exc))
        else:
            self._producer.flush(timeout_s)
