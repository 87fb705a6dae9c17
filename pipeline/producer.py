"""The one Kafka producer wrapper every trailpipe writer uses.

:class:`KafkaProducer` owns a librdkafka producer and adds what each user otherwise rewrote:
``produce`` waits for queue space (serving delivery reports) instead of dropping a record on
BufferError; a :class:`DeliveryTracker` is the default delivery callback; ``flush`` raises a
typed :class:`DeliveryError` (or a subclass the caller names) listing what failed; and, with a
``transactional_id``, every produce happens inside an open transaction that ``commit`` closes
together with consumer offsets (``abort_and_rebuild`` after an indeterminate error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from pipeline.logs import get_logger
from pipeline.model import KafkaBatch, KafkaRecord, TopicPartitionKey

log = get_logger("pipeline.producer")

DeliveryCallback = Callable[[KafkaError | None, Message], None]
QUEUE_FULL_POLL_S = 0.05
"""How long ``produce`` serves delivery reports before retrying when the local queue is full."""


class DeliveryTracker:
    """Collects delivery failures of a producer; ``on_delivery`` is the producer callback."""

    def __init__(self) -> None:
        self.failures: list[KafkaError] = []
        self.delivered = 0

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failures.append(err)

    def take_failures(self) -> list[KafkaError]:
        """Return and clear the failures seen since the last call."""
        failures, self.failures = self.failures, []
        return failures


class DeliveryError(Exception):
    """Records could not be made durable: ``remaining`` still queued after the flush timeout,
    ``failures`` the delivery errors reported since the previous flush."""

    def __init__(self, message: str, remaining: int = 0,
                 failures: tuple[KafkaError, ...] = ()) -> None:
        super().__init__(message)
        self.remaining, self.failures = remaining, failures


class KafkaProducer:
    """A librdkafka producer with back-off, delivery tracking, typed flush errors and optional
    transactions (see the module docstring). ``client`` is the librdkafka producer itself (for
    metadata calls; tests may replace it with a fake that has produce/poll/flush)."""

    def __init__(self, conf: Mapping[str, Any], transactional_id: str | None = None) -> None:
        self._conf = dict(conf)
        self.transactional = transactional_id is not None
        if transactional_id is not None:
            self._conf["transactional.id"] = transactional_id
        self.tracker = DeliveryTracker()
        self.client: Any = self._build()

    def _build(self) -> Producer:
        producer = Producer(self._conf)
        if self.transactional:
            producer.init_transactions(30)
            producer.begin_transaction()
        return producer

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                headers: Any = None, on_delivery: DeliveryCallback | None = None,
                partition: int | None = None) -> None:
        """Queue one record; when the local queue is full, serve delivery reports and retry
        (never drops). ``on_delivery`` defaults to :attr:`tracker`'s callback."""
        callback = self.tracker.on_delivery if on_delivery is None else on_delivery
        produce = self.client.produce
        extra = {} if partition is None else {"partition": partition}
        while True:
            try:
                produce(topic, value=value, key=key, headers=headers, on_delivery=callback,
                        **extra)
                return
            except BufferError:
                self.client.poll(QUEUE_FULL_POLL_S)

    def produce_record(self, record: KafkaRecord) -> None:
        """:meth:`produce` of a :class:`KafkaRecord`, tracked by :attr:`tracker`."""
        self.produce(record.topic, record.value, record.key, list(record.headers),
                     partition=record.partition)

    def produce_batch(self, batch: KafkaBatch) -> None:
        """:meth:`produce` of every record of ``batch``, in order. Tracked by :attr:`tracker`
        unless transactional: a transaction whose record failed delivery fails its commit
        (librdkafka), so no per-record Python callback is needed there."""
        callback = None if self.transactional else self.tracker.on_delivery
        produce, topic = self.client.produce, batch.topic
        heads = batch.headers if batch.headers is not None else repeat(None)
        for value, key, head in zip(batch.values, batch.keys, heads, strict=False):
            try:
                produce(topic, value=value, key=key, headers=head, on_delivery=callback)
            except BufferError:  # queue full: the slow path waits for space
                self.produce(topic, value, key, head, on_delivery=callback)

    def poll(self, timeout_s: float = 0) -> int:
        """Serve delivery reports; returns how many were served."""
        return int(self.client.poll(timeout_s))

    def wait(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for every queued record's delivery report; returns how many
        are still queued (0: all reported, successes and failures alike)."""
        return int(self.client.flush(timeout_s))

    def flush(self, timeout_s: float, *, what: str = "records",
              error: type[DeliveryError] = DeliveryError) -> None:
        """:meth:`wait`, then raise ``error`` when records are still queued or the tracker saw
        failures since the last flush (which are cleared). The message names the counts and
        up to three failures, calling the records ``what``."""
        remaining = self.wait(timeout_s)
        failures = self.tracker.take_failures()
        if remaining or failures:
            raise error(f"{remaining} {what} undelivered, {len(failures)} failed: "
                        f"{[str(f) for f in failures[:3]]}", remaining, tuple(failures))

    def commit(self, offsets: Mapping[TopicPartitionKey, int], group_metadata: Any,
               timeout_s: float, *, error: type[DeliveryError] = DeliveryError) -> None:
        """Commit the open transaction with ``offsets`` and open the next one. Raises
        KafkaException (the caller then calls :meth:`abort_and_rebuild`), or ``error`` when a
        record of the committed transaction failed delivery."""
        if offsets:
            tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            self.client.send_offsets_to_transaction(tps, group_metadata, timeout_s)
        self.client.commit_transaction(timeout_s)
        failures = self.tracker.take_failures()
        if failures:
            raise error("a record of the committed transaction failed delivery", 0,
                        tuple(failures))
        self.client.begin_transaction()

    def abort_and_rebuild(self, timeout_s: float) -> None:
        """Abort the open transaction (best effort) and replace the producer, which fences
        any zombie with the same transactional id."""
        self._abort(timeout_s)
        self.tracker.take_failures()
        self.client = self._build()
        log.info("producer_rebuilt", transactional=self.transactional)

    def close(self, timeout_s: float) -> None:
        """Abort an open transaction (nothing uncommitted may become visible) or flush
        (without raising: a closing caller has already flushed what it needed)."""
        if self.transactional:
            self._abort(timeout_s)
        else:
            self.wait(timeout_s)

    def _abort(self, timeout_s: float) -> None:
        try:
            self.client.abort_transaction(timeout_s)
        except KafkaException as exc:
            log.warning("transaction_abort_failed", error=str(exc))
