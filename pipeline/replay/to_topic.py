"""Replay into a topic (``trailpipe replay --to-topic T [--force]``, issue 11 item 7).

Contract.

* **Target.** ``replay.<replay id>.events.v1`` by default, or the name given. Writing into any
  topic ``[topics]`` names (the live events topic first of all) or any ``audit.*`` topic is
  refused unless ``force`` (:class:`ToTopicError` naming ``--force``).
* **Records.** Each source record the hot path selected is re-read by its coordinates (topic,
  partition, offset) with an ``assign()``-only, ``read_committed`` consumer that never commits
  (:func:`~pipeline.replay.hot.replay_consumer`), and produced unchanged: same key, same value
  bytes (the original Avro message, never re-encoded), same timestamp (``CreateTime``; a target
  configured with ``LogAppendTime`` overrides it), same headers, plus ``x-replay-id``,
  ``x-replay-source-topic``, ``x-replay-source-partition`` and ``x-replay-source-offset``
  (decimal ASCII). Source headers named ``x-replay-*`` (a replay of a replay) are replaced.
  The target partition is the murmur2 partition of the key, as for our producers. Records are
  produced in source (partition, offset) order, by the idempotent producer of
  :func:`pipeline.kafka.producer_config`; the run ends with a flush, and any undelivered or
  failed record raises :class:`~pipeline.producer.DeliveryError`.
* **Re-run rule (no duplicates).** Before producing, the target topic is read up to its high
  watermarks (read_committed) and the source coordinates of every record carrying this
  ``x-replay-id`` are collected; those coordinates are skipped. A run that died half-way is
  therefore completed, not duplicated, by running the same replay id again; retries inside one
  run are deduplicated by the idempotent producer. Two runs of the same replay id at the *same
  time* are not supported (each would miss what the other is writing).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from pipeline.producer import QUEUE_FULL_POLL_S, DeliveryError, DeliveryTracker
from pipeline.replay.config import ReplayConfig
from pipeline.replay.hot import OFFSET, PARTITION, ReplayError, is_fatal
from pipeline.replay.rate import RateLimiter, paced_each
from pipeline.topics_config import TopicsConfig

REPLAY_ID = "x-replay-id"
SOURCE_TOPIC = "x-replay-source-topic"
SOURCE_PARTITION = "x-replay-source-partition"
SOURCE_OFFSET = "x-replay-source-offset"
_REPLAY_HEADER_PREFIX = "x-replay-"
_REPLAY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")

Coordinate = tuple[str, int, int]
"""(source topic, partition, offset) of one replayed record."""
Header = tuple[str, str | bytes | None]


class ToTopicError(ReplayError):
    """The target topic is refused or the replay id is not usable in a topic name."""


@dataclass(frozen=True, slots=True)
class ToTopicResult:
    """``produced``: records written by this run; ``skipped``: source records this replay id
    had already written (an earlier run)."""

    target: str
    produced: int
    skipped: int

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "produced": self.produced, "skipped": self.skipped}


def target_topic(replay_id: str, topics: TopicsConfig, requested: str | None = None,
                 *, force: bool = False) -> str:
    """The topic to write into (see the module contract). Raises ToTopicError for a replay id
    that is not ``[A-Za-z0-9_-]{1,200}`` or a protected target without ``force``."""
    if not _REPLAY_ID_RE.fullmatch(replay_id):
        raise ToTopicError(f"replay id {replay_id!r} must match [A-Za-z0-9_-]{{1,200}}")
    name = requested if requested is not None else f"replay.{replay_id}.events.v1"
    if not force and (name in topics.names() or name.startswith("audit.")):
        live = " (the live events topic)" if name == topics.events else ""
        raise ToTopicError(f"refusing to write a replay into {name}{live}: pipeline topics and "
                           "audit.* topics need --force; the default is a replay.* topic")
    return name


def coordinates(table: pa.Table) -> dict[int, list[int]]:
    """The sorted source offsets per partition of a hot-path result table (its ``_partition``
    and ``_offset`` columns); empty for a table without rows (it may have no columns)."""
    found: dict[int, list[int]] = {}
    if table.num_rows == 0:
        return found
    for p, o in zip(table.column(PARTITION).to_pylist(), table.column(OFFSET).to_pylist(),
                    strict=True):
        found.setdefault(int(p), []).append(int(o))
    return {p: sorted(offsets) for p, offsets in sorted(found.items())}


def replay_headers(original: Iterable[Header] | None, replay_id: str,
                   source: Coordinate) -> list[Header]:
    """The source record's headers (any ``x-replay-*`` ones dropped), then the four replay
    headers for ``source``."""
    kept = [(k, v) for k, v in (original or ()) if not k.startswith(_REPLAY_HEADER_PREFIX)]
    topic, partition, offset = source
    return [*kept, (REPLAY_ID, replay_id.encode()), (SOURCE_TOPIC, topic.encode()),
            (SOURCE_PARTITION, str(partition).encode()), (SOURCE_OFFSET, str(offset).encode())]


def replayed_from(headers: Iterable[Header] | None, replay_id: str) -> Coordinate | None:
    """The source coordinate a target record carries when its ``x-replay-id`` is
    ``replay_id``; None otherwise (another replay, or not a replayed record)."""
    values = {k: v for k, v in (headers or ()) if k.startswith(_REPLAY_HEADER_PREFIX)}
    if values.get(REPLAY_ID) != replay_id.encode():
        return None
    try:
        return (_text(values.get(SOURCE_TOPIC)), int(_text(values.get(SOURCE_PARTITION))),
                int(_text(values.get(SOURCE_OFFSET))))
    except ValueError:
        return None


def _text(value: str | bytes | None) -> str:
    if value is None:
        raise ValueError("missing header")
    return value if isinstance(value, str) else value.decode()


def read_ranges(consumer: Consumer, topic: str, ranges: Mapping[int, tuple[int, int]],
                cfg: ReplayConfig, clock: Callable[[], float] = time.monotonic
                ) -> Iterator[Any]:
    """Yield the records of ``topic`` at offsets ``[start, end)`` per partition (assign only;
    ``consumer`` must have ``enable.partition.eof``). A partition ends at its last offset or its
    end-of-partition event. Raises ReplayError after ``idle_timeout_ms`` without any message,
    KafkaException on a consumer error."""
    ends = {p: end for p, (start, end) in ranges.items() if start < end}
    assigned = [TopicPartition(topic, p, ranges[p][0]) for p in sorted(ends)]
    consumer.assign(assigned)
    if assigned:
        consumer.resume(assigned)  # a partition a previous read paused stays paused otherwise
    last_s = clock()
    while ends:
        msgs: list[Any] = consumer.consume(cfg.batch_size, cfg.poll_timeout_ms / 1000)
        if not msgs:
            if clock() - last_s > cfg.idle_timeout_ms / 1000:
                raise ReplayError(f"{topic}: no records for {cfg.idle_timeout_ms} ms; "
                                  f"partitions not finished: {sorted(ends)}")
            continue
        last_s = clock()
        for m in msgs:
            p, err = m.partition(), m.error()
            end = ends.get(p)
            if err is not None and is_fatal(err):
                raise KafkaException(err)
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                continue
            if end is None or err is not None or m.offset() >= end:
                ends.pop(p, None)
                continue
            if m.offset() >= end - 1:
                del ends[p]
            yield m
    consumer.unassign()


def written_before(consumer: Consumer, target: str, replay_id: str, cfg: ReplayConfig
                   ) -> set[Coordinate]:
    """The source coordinates ``replay_id`` already wrote into ``target`` (empty when the
    target does not exist yet)."""
    timeout_s = cfg.metadata_timeout_ms / 1000
    meta = consumer.list_topics(target, timeout=timeout_s).topics.get(target)
    if meta is None or meta.error is not None or not meta.partitions:
        return set()
    ranges = {p: consumer.get_watermark_offsets(TopicPartition(target, p), timeout=timeout_s,
                                                cached=False) for p in meta.partitions}
    found = (replayed_from(m.headers(), replay_id)
             for m in read_ranges(consumer, target, ranges, cfg))
    return {c for c in found if c is not None}


def copy_records(consumer: Consumer, producer: Producer, source_topic: str,
                 offsets: Mapping[int, list[int]], target: str, replay_id: str,
                 cfg: ReplayConfig, skip: set[Coordinate],
                 limiter: RateLimiter | None = None) -> ToTopicResult:
    """Re-read the source records at ``offsets`` (per partition) and produce the ones not in
    ``skip`` into ``target`` (see the module contract), then flush and check every delivery.
    Raises ReplayError when a wanted source offset is not found (retention removed it, or it
    is a transaction marker), DeliveryError when a record was not delivered."""
    wanted = {p: set(o) for p, o in offsets.items() if o}
    ranges = {p: (min(o), max(o) + 1) for p, o in wanted.items()}
    tracker = DeliveryTracker()
    produced = skipped = 0
    for m in paced_each(read_ranges(consumer, source_topic, ranges, cfg), limiter):
        p, offset = m.partition(), m.offset()
        if offset not in wanted[p]:
            continue
        wanted[p].discard(offset)
        source = (source_topic, p, offset)
        if source in skip:
            skipped += 1
            continue
        _produce(producer, tracker, target, m, replay_headers(m.headers(), replay_id, source))
        produced += 1
    missing = {p: sorted(o)[:5] for p, o in wanted.items() if o}
    remaining = producer.flush(cfg.metadata_timeout_ms / 1000)
    failures = tracker.take_failures()
    if remaining or failures:
        raise DeliveryError(f"{remaining} replayed records undelivered, {len(failures)} "
                            f"failed: {[str(f) for f in failures[:3]]}", remaining,
                            tuple(failures))
    if missing:
        raise ReplayError(f"{source_topic}: source offsets not found (first per partition): "
                          f"{missing}; records retention removed are only in the lake, and "
                          "--to-topic copies Kafka records (key, value, timestamp, headers): "
                          "replay those into a file with --out")
    return ToTopicResult(target, produced, skipped)


def _produce(producer: Producer, tracker: DeliveryTracker, target: str, m: Any,
             headers: list[Header]) -> None:
    """Produce one record with the source's key, value and timestamp; waits for queue space."""
    _type, timestamp_ms = m.timestamp()
    while True:
        try:
            producer.produce(target, value=m.value(), key=m.key(), headers=headers,
                             timestamp=max(timestamp_ms, 0), on_delivery=tracker.on_delivery)
            return
        except BufferError:
            producer.poll(QUEUE_FULL_POLL_S)


def replay_to_topic(consumer: Consumer, producer: Producer, source_topic: str,
                    offsets: Mapping[int, list[int]], target: str, replay_id: str,
                    cfg: ReplayConfig, limiter: RateLimiter | None = None, *,
                    fresh: bool = False) -> ToTopicResult:
    """The whole step: :func:`written_before`, then :func:`copy_records` skipping those
    (paced by ``limiter``, records read from the source per second, when given). ``fresh``:
    the target was just created, so it holds nothing yet (and its partitions may not have
    leaders for a moment, which is why it is not read)."""
    skip = set() if fresh else written_before(consumer, target, replay_id, cfg)
    return copy_records(consumer, producer, source_topic, offsets, target, replay_id, cfg, skip,
                        limiter)
