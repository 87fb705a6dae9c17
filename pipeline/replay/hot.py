"""The hot path: read a :class:`~pipeline.replay.plan.Plan` from Kafka, decode, filter.

Contract. The consumer is only ever ``assign()``-ed: it never subscribes, so it never joins a
consumer group, and it never commits or stores offsets (``enable.auto.commit=false``,
``enable.auto.offset.store=false``; its ``group.id`` is a throwaway name librdkafka requires),
so a replay principal needs topic READ only and no group's offsets move. It reads
``read_committed``. Each partition is read from its plan start until its plan end (the high
watermark captured at start, exclusive) or its end-of-partition event, whichever comes first;
records appended after the run started are never returned. Values that do not decode are
counted (``undecodable``) and skipped. A ``consume()`` never asks for more records than the
ranges still hold, so the last one does not wait out ``poll_timeout_ms``.

Counters per partition: ``scanned`` (records read inside the plan's offsets), ``matched``
(kept by the filters), ``undecodable``, and ``next_offset`` (where the read stopped: the plan
end once the partition is done).

Stopping early (Ctrl-C): ``read_plan`` checks ``stop()`` before each ``consume()`` (at most
``poll_timeout_ms`` apart); when it is true the loop ends, the rows matched so far are
returned with ``complete`` false, and each partition's ``next_offset`` says how far it got.
The caller turns SIGINT into that flag, so a batch is never half counted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from pipeline.kafka import consumer_config
from pipeline.model import DecodedBatch
from pipeline.replay.config import ReplayConfig
from pipeline.replay.filters import Filters, mask
from pipeline.replay.plan import Plan, build_plan, partitions_to_read, seek_ms

PARTITION = "_partition"
OFFSET = "_offset"
"""Kafka coordinate columns added to the matched table (ignored by the JSON mapping)."""


class ReplayError(Exception):
    """The replay cannot go on (topic missing, broker silent past the idle timeout)."""


@dataclass(slots=True)
class Counts:
    scanned: int = 0
    matched: int = 0
    undecodable: int = 0
    next_offset: int = 0


@dataclass(slots=True)
class HotResult:
    """The matched rows (decoded event columns plus ``_partition``/``_offset``, in read order)
    and the counters per partition of the plan."""

    table: pa.Table
    counts: dict[int, Counts] = field(default_factory=dict)
    complete: bool = True
    partitions_done: int = 0

    def summary(self) -> dict[str, Any]:
        return {"scanned": sum(c.scanned for c in self.counts.values()),
                "matched": sum(c.matched for c in self.counts.values()),
                "undecodable": sum(c.undecodable for c in self.counts.values()),
                "complete": self.complete,
                "partitions": {str(p): {"scanned": c.scanned, "matched": c.matched,
                                        "undecodable": c.undecodable}
                               for p, c in sorted(self.counts.items())}}


def replay_consumer(kafka_base: dict[str, Any], extra: dict[str, str]) -> Consumer:
    """A consumer for :func:`read_plan`: throwaway group id, never commits, read_committed,
    end-of-partition events on."""
    conf = consumer_config(kafka_base, f"trailpipe-replay-{uuid.uuid4().hex}", extra,
                           read_committed=True)
    conf["enable.partition.eof"] = True
    return Consumer(conf)


def make_plan(consumer: Consumer, topic: str, filters: Filters, cfg: ReplayConfig) -> Plan:
    """Fetch the metadata :func:`~pipeline.replay.plan.build_plan` needs (partition count,
    watermarks, offsets_for_times) for the partitions the filters need. Raises ReplayError
    when the topic does not exist; KafkaException when the broker cannot answer."""
    timeout_s = cfg.metadata_timeout_ms / 1000
    meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise ReplayError(f"topic {topic} does not exist")
    count = len(meta.partitions)
    wanted = partitions_to_read(filters, count)
    marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s,
                                               cached=False) for p in wanted}
    at = seek_ms(filters, cfg.lateness_ms)
    found = consumer.offsets_for_times([TopicPartition(topic, p, at) for p in wanted],
                                       timeout=timeout_s)
    return build_plan(topic, filters, cfg.lateness_ms, count, marks,
                      {tp.partition: tp.offset for tp in found})


def read_plan(consumer: Consumer, plan: Plan, filters: Filters,
              decode: Callable[[Sequence[bytes | None]], DecodedBatch], cfg: ReplayConfig,
              clock: Callable[[], float] = time.monotonic, *,
              stop: Callable[[], bool] = lambda: False,
              progress: Callable[[HotResult], None] = lambda _result: None) -> HotResult:
    """Read every range of ``plan`` (see the module contract) and return the matched rows.
    ``progress(result)`` is called after each batch (counters and ``partitions_done`` so
    far); ``stop()`` ends the read early (``complete`` false). Raises ReplayError when
    nothing arrives for ``idle_timeout_ms``, KafkaException on a fatal consumer error."""
    result = HotResult(pa.table({}), {r.partition: Counts(next_offset=r.start)
                                      for r in plan.ranges})
    ends = {r.partition: r.end for r in plan.ranges if r.start < r.end}
    result.partitions_done = len(plan.ranges) - len(ends)
    consumer.assign([TopicPartition(plan.topic, r.partition, r.start) for r in plan.ranges
                     if r.partition in ends])
    tables: list[pa.Table] = []
    last_s = clock()
    while ends:
        if stop():
            result.complete = False
            break
        msgs = consumer.consume(_wanted(ends, result.counts, cfg.batch_size),
                                cfg.poll_timeout_ms / 1000)
        if not msgs:
            if clock() - last_s > cfg.idle_timeout_ms / 1000:
                raise ReplayError(f"no records for {cfg.idle_timeout_ms} ms; partitions not "
                                  f"finished: {sorted(ends)}")
            continue
        last_s = clock()
        values, partitions, offsets, finished = _take(msgs, ends)
        if values:
            tables.append(_filtered(values, partitions, offsets, filters, decode,
                                    result.counts))
        if finished:
            consumer.pause([TopicPartition(plan.topic, p) for p in finished])
            for p in finished:
                result.counts[p].next_offset = plan_end(plan, p)
            result.partitions_done += len(finished)
        progress(result)
    consumer.unassign()
    if tables:
        result.table = pa.concat_tables(tables)
    return result


def _wanted(ends: dict[int, int], counts: dict[int, Counts], batch_size: int) -> int:
    """Records to ask consume() for: a batch, but never more than the unfinished ranges still
    hold (consume() returns early only once it has that many; asking for more makes the last
    call of a run wait out the poll timeout)."""
    left = sum(end - counts[p].next_offset for p, end in ends.items())
    return max(1, min(batch_size, left))


def plan_end(plan: Plan, partition: int) -> int:
    """The end offset (exclusive) the plan gives ``partition``."""
    return next(r.end for r in plan.ranges if r.partition == partition)


def is_fatal(err: KafkaError) -> bool:
    """Whether a consumer event ends the read. Not fatal: end of partition, and the group
    authorization error of the throwaway ``group.id`` (librdkafka looks up its coordinator
    although an ``assign()``-only consumer never uses it; a replay principal has topic READ
    only, no group ACL)."""
    return err.code() not in (KafkaError._PARTITION_EOF, KafkaError.GROUP_AUTHORIZATION_FAILED)


def _take(msgs: list[Any], ends: dict[int, int]
          ) -> tuple[list[bytes | None], pa.Array, pa.Array, list[int]]:
    """The values inside the plan's ranges with their partitions (int32) and offsets (int64),
    and the partitions this batch finished (removed from ``ends``). One pass per attribute:
    a batch is almost always records only, all inside their ranges (the per-message loop is
    only for batches with an event or a record past an end)."""
    errors = [m.error() for m in msgs]
    partitions = [m.partition() for m in msgs]
    offsets = [m.offset() for m in msgs]
    last: dict[int, int] = {}
    for p, offset in zip(partitions, offsets, strict=True):
        last[p] = offset  # offsets grow within a partition: the last one is the largest
    if any(e is not None for e in errors) or any(p not in ends or last[p] >= ends[p] for p in last):
        return _take_slowly(msgs, errors, partitions, offsets, ends)
    finished = [p for p, offset in last.items() if offset >= ends[p] - 1]
    for p in finished:
        del ends[p]
    return ([m.value() for m in msgs], pa.array(partitions, pa.int32()),
            pa.array(offsets, pa.int64()), finished)


def _take_slowly(msgs: list[Any], errors: list[Any], partitions: list[int],
                 offsets: list[int], ends: dict[int, int]
                 ) -> tuple[list[bytes | None], pa.Array, pa.Array, list[int]]:
    """:func:`_take` message by message: end-of-partition events and records past an end."""
    values: list[bytes | None] = []
    kept: list[int] = []
    finished: list[int] = []
    for i, (m, err, p, offset) in enumerate(zip(msgs, errors, partitions, offsets,
                                                strict=True)):
        if err is not None and is_fatal(err):
            raise KafkaException(err)
        if err is not None and err.code() != KafkaError._PARTITION_EOF:
            continue
        end = ends.get(p)
        if err is not None or end is None or offset >= end:
            if ends.pop(p, None) is not None:
                finished.append(p)
            continue
        values.append(m.value())
        kept.append(i)
        if offset >= end - 1:
            del ends[p]
            finished.append(p)
    return (values, pa.array([partitions[i] for i in kept], pa.int32()),
            pa.array([offsets[i] for i in kept], pa.int64()), finished)


def _filtered(values: list[bytes | None], partitions: pa.Array, offsets: pa.Array,
              filters: Filters, decode: Callable[[Sequence[bytes | None]], DecodedBatch],
              counts: dict[int, Counts]) -> pa.Table:
    """Decode, count and filter one batch; the kept rows with their coordinates."""
    decoded = decode(values)
    for p, n in _per_partition(partitions).items():
        counts[p].scanned += n
    for p, offset in _per_partition(partitions, offsets, pc.max).items():
        counts[p].next_offset = max(counts[p].next_offset, offset + 1)
    for index, _err in decoded.errors:
        counts[partitions[index].as_py()].undecodable += 1
    rows = pa.array(decoded.rows, pa.int64())
    table = decoded.table.append_column(PARTITION, partitions.take(rows))
    table = table.append_column(OFFSET, offsets.take(rows))
    keep = mask(table, filters)
    # A window over everything keeps every row: no copy of the batch then.
    kept = table if keep.true_count == len(keep) else table.filter(keep)
    for p, n in _per_partition(kept.column(PARTITION).combine_chunks()).items():
        counts[p].matched += n
    return kept


def _per_partition(partitions: pa.Array, values: pa.Array | None = None,
                   reduce: Callable[[pa.Array], pa.Scalar] = pc.count) -> dict[int, int]:
    """``reduce(values)`` of each partition's rows (default: how many rows each has)."""
    if values is None:
        values = partitions
    out = {}
    for p in pc.unique(partitions).to_pylist():
        out[p] = reduce(values.filter(pc.equal(partitions, p))).as_py()
    return out
