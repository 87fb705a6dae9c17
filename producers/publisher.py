"""Publishing CloudTrail records: Avro events keyed by account|region, bad input dead-lettered.

Contract: every record handed to :meth:`Publisher.publish` ends, once :meth:`Publisher.flush`
returns, as exactly one of: an event on the events topic (``produced``), a dead letter with its
reason and location on the DLQ (``dead_lettered``), or a counted delivery failure, which makes
``flush`` raise :class:`DeliveryFailed` (a daemon then exits non-zero). Accounting balances:
``read == produced + dead_lettered + failed``.

:meth:`Publisher.counts` reads all of it at once (with dead letters and delivery errors by
reason, and when the produce loop last turned) for the daemon's metrics
(:mod:`pipeline.metrics.producer`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from pipeline.deadletter import dead_letter
from pipeline.events.fused import encode_event
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode, headers_for
from pipeline.metrics.producer import ProducerCounts
from pipeline.producer import KafkaProducer
from producers.files import RawRecord
from producers.pool import MAPPING_ERRORS, EncodeError, EncodePool, EncodeResult, EncodeTask


class DeliveryFailed(Exception):
    """Kafka did not confirm some records; they are counted in ``stats.failed``."""


@dataclass(slots=True)
class PublishStats:
    read: int = 0
    produced: int = 0
    dead_lettered: int = 0
    failed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def pending(self) -> int:
        return self.read - self.produced - self.dead_lettered - self.failed

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "pending": self.pending}


class Batch:
    """Tracks the deliveries of one group of records (e.g. one HTTP request)."""

    def __init__(self) -> None:
        self.pending = 0
        self.produced = 0
        self.dead_lettered = 0
        self.errors: list[str] = []
        self._done = threading.Condition()
        self._on_event: Any = None  # the event delivery callback, set by the Publisher

    def add(self) -> None:
        with self._done:
            self.pending += 1

    def _delivered(self, dead_letter: bool, err: KafkaError | None) -> None:
        with self._done:
            self.pending -= 1
            if err is not None:
                self.errors.append(str(err))
            elif dead_letter:
                self.dead_lettered += 1
            else:
                self.produced += 1
            self._done.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """True when every record of the batch got its delivery report in time."""
        with self._done:
            return self._done.wait_for(lambda: self.pending == 0, timeout_s)


class Publisher:
    """Maps, encodes and produces records; one instance per daemon, safe to call from the
    threads of an HTTP server (librdkafka's producer is thread-safe)."""

    def __init__(self, producer_conf: Mapping[str, Any], *, events_topic: str, dlq_topic: str,
                 source: str, producer_id: str, clock_ms: Callable[[], int] | None = None,
                 encoder: Callable[[dict[str, Any]], bytes] = encode,
                 headers: list[tuple[str, bytes]] | None = None) -> None:
        """``encoder`` turns an ApiCallEvent datum into the message value: Avro single-object
        encoding by default, or ``ConfluentCodec.encode`` for the Schema Registry wire format
        (then pass ``headers`` describing that format instead of ours)."""
        self._out = KafkaProducer(producer_conf)
        self._events_topic, self._dlq_topic = events_topic, dlq_topic
        self._source, self._producer_id = source, producer_id
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._encode = encoder
        self._payload = encode_event if encoder is encode else self._encode_with
        self._headers = list(headers_for()) if headers is None else headers
        self._lock = threading.Lock()
        self.stats = PublishStats()
        self._dead_letters: Counter[str] = Counter()  # confirmed dead letters by reason
        self._delivery_errors: Counter[str] = Counter()  # failed deliveries by Kafka error name
        self._last_error: list[str | None] = [None]  # the latest delivery report's error
        self._last_turn_s: float | None = None  # monotonic time of the latest poll/flush
        # The event delivery callback for records without a Batch (built once, not per
        # record), and one dead-letter callback per reason (built on first use).
        self._on_event = self._callback(None, None)
        self._on_dead_letter: dict[str, Any] = {}

    def publish(self, record: RawRecord, batch: Batch | None = None) -> None:
        """Produce one record (or its dead letter). Never raises for bad input."""
        with self._lock:
            self.stats.read += 1
            self.stats.bytes_in += len(record.raw)
        if batch is not None:
            batch.add()
        if record.value is None:
            self._dead_letter(record, record.error_type or "InvalidRecord",
                              record.error or "invalid record", batch)
            return
        try:
            payload = self._payload(record.value, self._clock_ms(), self._source,
                                    self._producer_id, record.location)
        except MAPPING_ERRORS as exc:  # bad input, never fatal
            self._dead_letter(record, type(exc).__name__, str(exc), batch)
            return
        self._produce(self._events_topic, event_key(record.value), payload,
                      [*self._headers, ("x-source-location", record.location.encode())],
                      self._event_callback(batch))

    def _encode_with(self, value: dict[str, Any], ingest_time_ms: int, source: str,
                     producer_id: str, location: str | None) -> bytes:
        """The custom ``encoder`` of the datum (the default one is fused with the mapping)."""
        ingest = IngestMeta(ingest_time_ms, source, producer_id, location)
        return self._encode(to_avro(value, ingest=ingest))

    def publish_many(self, records: Iterable[RawRecord], pool: EncodePool | None = None, *,
                     poll_every: int = 1000) -> int:
        """Publish ``records`` in order, serving delivery reports every ``poll_every`` records;
        returns how many were handed over. Without ``pool``: :meth:`publish` per record. With
        one: mapping + encoding run in the pool's workers, and each record ends exactly as
        :meth:`publish` would end it (same key, payload, headers, dead letters, accounting, and
        IngestMeta: the ingest time is taken when the record is handed to the pool). A pool
        needs the default Avro encoding (raises ValueError for another ``encoder``), and
        ``record.raw`` must parse (``json.loads``) to ``record.value``, as it does for records
        of :mod:`producers.files`: workers get the raw bytes, cheaper to send than the value."""
        if pool is not None and self._encode is not encode:
            raise ValueError("an EncodePool encodes with pipeline.events.wire.encode only")
        count = 0
        if pool is None:
            for count, record in enumerate(records, start=1):
                self.publish(record)
                if count % poll_every == 0:
                    self.poll()
            return count
        held: deque[RawRecord] = deque()
        for count, result in enumerate(pool.encode(self._tasks(records, held)), start=1):
            self._publish_encoded(held.popleft(), result)
            if count % poll_every == 0:
                self.poll()
        return count

    def _tasks(self, records: Iterable[RawRecord],
               held: deque[RawRecord]) -> Iterator[EncodeTask | None]:
        for record in records:
            held.append(record)
            yield (None if record.value is None else
                   (record.raw, self._clock_ms(), self._source, self._producer_id,
                    record.location))

    def _publish_encoded(self, record: RawRecord, result: EncodeResult) -> None:
        """The end of :meth:`publish` for a record the pool mapped and encoded."""
        with self._lock:
            self.stats.read += 1
            self.stats.bytes_in += len(record.raw)
        if result is None:
            self._dead_letter(record, record.error_type or "InvalidRecord",
                              record.error or "invalid record", None)
        elif isinstance(result, EncodeError):
            self._dead_letter(record, result.error_type, result.message, None)
        else:
            self._produce(self._events_topic, result[0], result[1],
                          [*self._headers, ("x-source-location", record.location.encode())],
                          self._on_event)

    def _dead_letter(self, record: RawRecord, error_type: str, error: str,
                     batch: Batch | None) -> None:
        dlq = dead_letter(dlq_topic=self._dlq_topic, error_type=error_type, error=error,
                          key=None, value=record.raw, source=self._source,
                          location=record.location)
        self._produce(dlq.topic, dlq.key, dlq.value, list(dlq.headers),
                      self._dead_letter_callback(error_type, batch))

    def _produce(self, topic: str, key: bytes | None, value: bytes | None,
                 headers: list[Any], callback: Any) -> None:
        self._out.produce(topic, value, key, headers, callback)

    @property
    def _producer(self) -> Any:
        """The librdkafka client (unit tests swap in a fake with produce/poll/flush)."""
        return self._out.client

    @_producer.setter
    def _producer(self, client: Any) -> None:
        self._out.client = client

    def _event_callback(self, batch: Batch | None) -> Any:
        """The delivery callback of an event: the publisher's own, or the batch's, made on
        the batch's first record (a batch belongs to one publisher)."""
        if batch is None:
            return self._on_event
        if batch._on_event is None:
            batch._on_event = self._callback(None, batch)
        return batch._on_event

    def _dead_letter_callback(self, reason: str, batch: Batch | None) -> Any:
        """The delivery callback of a dead letter for ``reason`` (cached without a batch;
        made per dead letter of a batch: they are rare)."""
        if batch is not None:
            return self._callback(reason, batch)
        callback = self._on_dead_letter.get(reason)
        if callback is None:
            callback = self._on_dead_letter[reason] = self._callback(reason, None)
        return callback

    def _callback(self, dead_letter: str | None, batch: Batch | None) -> Any:
        """A delivery callback; ``dead_letter`` is the reason of a dead letter, None for an
        event."""
        # Closes over the counters and the lock, not over self: the publisher keeps these
        # callbacks, and no reference cycle should keep its Kafka client alive.
        stats, lock, last_error = self.stats, self._lock, self._last_error
        dead_letters, delivery_errors = self._dead_letters, self._delivery_errors

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            with lock:
                last_error[0] = None if err is None else f"{err.str()} ({err.name()})"
                if err is not None:
                    stats.failed += 1
                    delivery_errors[err.name()] += 1
                elif dead_letter is not None:
                    stats.dead_lettered += 1
                    dead_letters[dead_letter] += 1
                else:
                    stats.produced += 1
                    stats.bytes_out += len(msg)  # the value's length, without a copy
            if batch is not None:
                batch._delivered(dead_letter is not None, err)
        return on_delivery

    def counts(self) -> ProducerCounts:
        """Every counter at one instant (safe from any thread)."""
        with self._lock:
            return ProducerCounts(self.stats.as_dict(), dict(self._dead_letters),
                                  dict(self._delivery_errors), self._last_turn_s,
                                  self._last_error[0])

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """True when the events topic's metadata can be fetched from the cluster."""
        try:
            meta = self._producer.list_topics(self._events_topic, timeout=timeout_s)
        except KafkaException:
            return False
        topic = meta.topics.get(self._events_topic)
        return topic is not None and topic.error is None

    def poll(self, timeout_s: float = 0) -> None:
        """Serve delivery reports (the produce loop's turn: /healthz judges how recent)."""
        self._last_turn_s = time.monotonic()
        self._out.poll(timeout_s)

    def flush(self, timeout_s: float = 60) -> PublishStats:
        """Wait for every delivery report. Raises DeliveryFailed when any record failed or is
        still unconfirmed after ``timeout_s``."""
        self._last_turn_s = time.monotonic()
        remaining = self._out.wait(timeout_s)
        if remaining or self.stats.failed:
            raise DeliveryFailed(f"{self.stats.failed} records failed delivery, {remaining} "
                                 f"unconfirmed after {timeout_s}s")
        return self.stats
