"""State changelogs: a compacted topic with one record per state key, written in the same
transaction as a daemon's outputs and consumed offsets (the alerter's windows, the aggregator's).

State of input partition ``p`` lives in changelog partition ``p`` (so the changelog needs at
least as many partitions as the input topic), keyed by the daemon's state key; a deleted key is
a tombstone. :func:`read_partition` replays one partition up to its end, read_committed, so a
restarted daemon resumes from exactly the state its last committed transaction left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from pipeline.model import KafkaRecord, Unavailable

RESTORE_TIMEOUT_S = 60.0


def state_record(topic: str, partition: int, key: str, value: bytes | None) -> KafkaRecord:
    return KafkaRecord(topic, value, key.encode(), partition=partition)


def load_versioned(value: bytes, version: int, error: type[Exception], what: str) -> list[Any]:
    """A state value written as a JSON list whose first item is its format ``version``;
    ``error`` (naming ``what``) when it is not valid JSON or of another version."""
    try:
        fields = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise error(f"corrupt {what}: {exc}") from exc
    if not isinstance(fields, list) or not fields or fields[0] != version:
        raise error(f"{what} of an unknown version: {value[:20]!r}")
    return fields


def read_partition(base_conf: dict[str, Any], topic: str, partition: int, *, group: str,
                   timeout_s: float = RESTORE_TIMEOUT_S) -> Iterator[tuple[str, bytes | None]]:
    """``(key, value)`` of every committed record of ``topic[partition]``, oldest first.
    ``group`` is only a client label (nothing is committed). Raises Unavailable when the end is
    not reached within ``timeout_s`` (the Runner rewinds and retries) and ValueError when the
    partition does not exist."""
    consumer = Consumer({**base_conf, "group.id": group,
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        if partition not in parts:
            raise ValueError(f"{topic} has no partition {partition}: it needs at least as "
                             "many partitions as its input topic")
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        yield from _to_end(consumer, timeout_s)
    finally:
        consumer.close()


def _to_end(consumer: Consumer, timeout_s: float) -> Iterator[tuple[str, bytes | None]]:
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        for msg in consumer.consume(10_000, 0.5):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    return
                raise Unavailable(f"changelog read failed: {err}")
            yield (msg.key() or b"").decode(), msg.value()
    raise Unavailable(f"changelog not read to its end within {timeout_s:.0f} s")
