"""The Runner's intake: polled messages → decoded → processed → routed outputs, with poison
dead-lettered and progress recorded in the offset ledger.

Per record: each message is decoded into an :class:`~pipeline.model.Event` and handed to a
:class:`~pipeline.model.Processor`. Batch (a ``decode_batch`` is given): the poll's values are
decoded at once into a ``pyarrow.Table``, the Kafka coordinates appended as columns, and the
table handed to a :class:`~pipeline.model.BatchProcessor`; values that do not decode are
dead-lettered, and a table the processor fails on is bisected down to the failing rows. Without
a processor the decoded value (per record) or the table (batch) is the output. Either way every
message ends as processed or dead-lettered: consumed = processed + dead_lettered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from pipeline.batches import Polled, process_isolating, with_coordinates
from pipeline.model import BatchDecoder, BatchProcessor, Event, Processor, Unavailable
from pipeline.offsets import OffsetLedger

Decoder = Callable[[bytes | None], Any]
BatchDecoders = BatchDecoder | Mapping[str, BatchDecoder]
"""One batch decoder for every topic, or one per topic (a daemon reading topics of different
record types; each topic's messages are then decoded and processed as their own table)."""


def identity(raw: bytes | None) -> Any:
    """The default per-record decoder: the raw value."""
    return raw


@dataclass(slots=True)
class RunStats:
    """Counters for one run. Accounting always balances: consumed = processed + dead_lettered."""

    consumed: int = 0
    processed: int = 0
    dead_lettered: int = 0
    outputs: int = 0
    commits: int = 0
    rewinds: int = 0


def _headers(msg: Message) -> tuple[tuple[str, bytes], ...]:
    pairs: list[Any] = list(msg.headers() or [])
    return tuple((str(k), v if isinstance(v, bytes) else b"") for k, v in pairs)


class Intake:
    """Feeds polled messages through decode and processing. ``route(item, source)`` takes each
    output; ``dead_letter(msg, exc)`` takes each poison message."""

    def __init__(self, *, processor: Processor | BatchProcessor | None, decode: Decoder,
                 decode_batch: BatchDecoders | None, ledger: OffsetLedger, stats: RunStats,
                 route: Callable[[Any, Event | None], None],
                 dead_letter: Callable[[Message, Exception], None]) -> None:
        self._processor = processor
        self._decode, self._decode_batch = decode, decode_batch
        self._ledger, self._stats = ledger, stats
        self._route, self._dead = route, dead_letter
        self.counted: list[Message] = []
        """The messages the latest :meth:`take` counted as consumed (all of them unless it
        raised Unavailable part-way): what the consumed metric counts, so it equals RunStats."""

    def take(self, msgs: list[Message]) -> None:
        """Process one poll's good messages (in poll order)."""
        self.counted = []
        decoders = self._decode_batch
        if isinstance(decoders, Mapping):
            by_topic: dict[str, list[Message]] = {}
            for msg in msgs:
                by_topic.setdefault(msg.topic() or "", []).append(msg)
            for topic, group in by_topic.items():
                self._take_batch(Polled.of(group), decoders[topic])
        elif decoders is not None:
            self._take_batch(Polled.of(msgs), decoders)
        else:
            for msg in msgs:
                self._take_one(msg)

    def _dead_letter(self, msg: Message, exc: Exception) -> None:
        self._dead(msg, exc)
        self._stats.dead_lettered += 1

    def _take_batch(self, polled: Polled, decode_batch: BatchDecoder) -> None:
        """Decode the poll at once, dead-letter what does not decode, process the rest as one
        table (bisecting to the rows the processor fails on), then record the progress."""
        decoded = decode_batch(polled.values)  # Unavailable propagates: nothing counted yet
        self._stats.consumed += len(polled.messages)
        self.counted.extend(polled.messages)
        for index, exc in decoded.errors:
            self._dead_letter(polled.messages[index], exc)
        rows = decoded.rows  # often range(n): no per-row list
        if len(rows):
            table = with_coordinates(decoded.table, polled.coordinates(rows))
            outputs: list[Any] = [table]
            failed: list[tuple[int, Exception]] = []
            if self._processor is not None:
                process = self._processor.process_batch  # type: ignore[union-attr]
                outputs, failed = process_isolating(process, table)
            for row, exc in failed:
                self._dead_letter(polled.messages[rows[row]], exc)
            for item in outputs:
                self._route(item, None)
            self._stats.processed += len(rows) - len(failed)
        for tp, (first, last) in polled.ranges().items():
            self._ledger.processed_range(tp, first, last)

    def _take_one(self, msg: Message) -> None:
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        try:
            _, ts_ms = msg.timestamp()
            event = Event(key=msg.key(), value=self._decode(msg.value()), timestamp_ms=ts_ms,
                          topic=topic, partition=partition, offset=offset,
                          headers=_headers(msg), raw=msg.value())
            outputs = [event.value] if self._processor is None else \
                list(self._processor.process(event))  # type: ignore[union-attr]
        except Unavailable:
            raise  # not taken, nor counted: the Runner rewinds and reads it again
        except Exception as exc:  # poison: any decode/process failure dead-letters the record
            self._dead_letter(msg, exc)
        else:
            for item in outputs:
                self._route(item, event)
            self._stats.processed += 1
        self._stats.consumed += 1
        self.counted.append(msg)
        self._ledger.processed((topic, partition), offset)
