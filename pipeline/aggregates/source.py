"""Where the reader gets ``Aggregate`` rows: the compacted topic or the lake.

The topic is read with no consumer group (manual assignment, nothing committed),
``read_committed`` (aborted transactions of a crashed aggregator never show), from the
beginning of every partition up to the end offsets taken when the read starts: a consistent
snapshot even while the aggregator keeps writing. The latest value per Kafka key wins and a
tombstone deletes its key, which is what compaction converges to, so the answer does not
depend on whether the log cleaner has run yet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as TP

from pipeline.aggregates.table import AGGREGATE, ARROW_SCHEMA, WINDOW_MS, lake_date, to_table
from pipeline.events.records import RecordDecodeError, decode_record
from pipeline.kafka import consumer_config
from pipeline.lake.query import EmptyLake, aggregates_dataset
from pipeline.logs import get_logger

log = get_logger("pipeline.aggregates.source")
READ_TIMEOUT_S = 60.0


class SourceError(Exception):
    """The topic cannot be read (missing, unreachable, or not read to its end in time)."""


def read_to_end(base_conf: Mapping[str, Any], topic: str,
                timeout_s: float = READ_TIMEOUT_S) -> Iterator[Message]:
    """Every committed record of ``topic`` below the end offsets at the start of the read,
    partition by partition in offset order (partitions interleaved). Raises SourceError."""
    conf = {**consumer_config(base_conf, "trailpipe-reader", {}, read_committed=True),
            "enable.partition.eof": True}
    consumer = Consumer(conf)  # assign() only: it never joins the group nor commits
    try:
        ends = _end_offsets(consumer, topic)
        consumer.assign([TP(topic, p, OFFSET_BEGINNING) for p in ends])
        yield from _consume(consumer, ends, time.monotonic() + timeout_s, timeout_s)
    except KafkaException as exc:
        raise SourceError(f"cannot read {topic}: {exc}") from exc
    finally:
        consumer.close()


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    """End offset per partition that holds records."""
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        raise SourceError(f"topic {topic} does not exist (trailpipe topics create makes it)")
    marks = {p: consumer.get_watermark_offsets(TP(topic, p), timeout=10)
             for p in meta.partitions}
    return {p: high for p, (low, high) in marks.items() if high > low}


def _consume(consumer: Consumer, ends: dict[int, int], deadline_s: float,
             timeout_s: float) -> Iterator[Message]:
    pending = set(ends)
    while pending:
        if time.monotonic() > deadline_s:
            raise SourceError(f"not read to its end within {timeout_s:.0f} s")
        for msg in consumer.consume(10_000, 0.5):
            err, part = msg.error(), msg.partition()
            if err is not None and err.code() == KafkaError._PARTITION_EOF:
                pending.discard(part)  # read_committed: the end is the last stable offset
            elif err is not None:
                raise SourceError(f"read failed: {err}")
            elif part is not None and (msg.offset() or 0) < ends[part]:
                yield msg
                if (msg.offset() or 0) >= ends[part] - 1:
                    pending.discard(part)


def topic_rows(base_conf: Mapping[str, Any], topic: str,
               timeout_s: float = READ_TIMEOUT_S) -> pa.Table:
    """The latest ``Aggregate`` per key on ``topic`` as a table of
    :data:`~pipeline.aggregates.table.ARROW_SCHEMA`. Values that are not Aggregate records are
    skipped and counted in one ``aggregates_undecodable`` log event. Raises SourceError."""
    latest: dict[bytes, bytes | None] = {}
    for msg in read_to_end(base_conf, topic, timeout_s):
        key = msg.key()
        # Keyless records cannot be compacted away; each stands for itself.
        latest[key if key is not None else f"@{msg.partition()}:{msg.offset()}".encode()] = \
            msg.value()
    datums, bad = [], 0
    for value in latest.values():
        if value is None:
            continue  # a tombstone: the key is deleted
        try:
            datums.append(decode_record(AGGREGATE, value))
        except RecordDecodeError:
            bad += 1
    if bad:
        log.warning("aggregates_undecodable", topic=topic, records=bad)
    return to_table(datums)


def lake_rows(url: str, s3_endpoint: str | None, *, window_size: str,
              start_ms: int | None = None, end_ms: int | None = None) -> pa.Table:
    """The lake's ``Aggregate`` rows of ``window_size`` windows overlapping
    ``[start_ms, end_ms)`` (None: unbounded), copies included (the merge removes them), as a
    table of ARROW_SCHEMA; an empty table when the lake has none. pyarrow errors propagate."""
    try:
        dataset = aggregates_dataset(url, s3_endpoint)
    except EmptyLake:
        return ARROW_SCHEMA.empty_table()
    where = ds.field("window_size") == window_size
    if start_ms is not None:
        # Partition pruning: a window that overlaps start_ms began at most one window earlier.
        where &= ds.field("date") >= lake_date(start_ms - WINDOW_MS.get(window_size, 0))
        where &= ds.field("window_end_ms") > start_ms
    if end_ms is not None:
        where &= (ds.field("date") <= lake_date(end_ms)) & (ds.field("window_start_ms") < end_ms)
    table = dataset.to_table(columns=ARROW_SCHEMA.names, filter=where)
    return table.cast(ARROW_SCHEMA)
