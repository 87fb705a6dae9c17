"""The subscriptions registry: the compacted ``[topics] siem_subscriptions`` topic, one JSON
record per subscription keyed by its name, a tombstone once revoked.

Readers take the whole topic each time (it holds one record per SIEM, so it is tiny): every
partition from its beginning to its end, no consumer group, nothing committed. Writers are
synchronous: a call returns once the broker has the record, or raises.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pydantic
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from pipeline.logs import get_logger
from pipeline.model import Unavailable
from pipeline.producer import DeliveryError, KafkaProducer
from pipeline.siem.model import Subscription

log = get_logger("pipeline.siem.registry")

READER_LABEL = "trailpipe.siem.registry"
"""The ``group.id`` the reader sets as a client label (it joins no group, commits nothing)."""
WRITE_TIMEOUT_S = 30.0
FETCH_WAIT_MS = 10  # the topic is tiny: answer fetches at once rather than wait for data
POLL_S = 0.05


class RegistryError(DeliveryError):
    """A subscription record (or tombstone) was not made durable."""


def load_subscriptions(base_conf: dict[str, Any], topic: str, *,
                       timeout_s: float = 10.0) -> dict[str, Subscription]:
    """Every live subscription on ``topic`` by name: the latest record per key, a tombstone
    removes the key. A record that does not parse is logged (its key only: a record may hold a
    view's hashing key) and skipped. ``base_conf`` is :func:`pipeline.kafka.base_client_config`.

    Raises ValueError when ``topic`` does not exist, Unavailable when the whole topic is not
    read within ``timeout_s``."""
    found: dict[str, Subscription] = {}
    for key, value in _read_to_end(base_conf, topic, timeout_s):
        sub = None if value is None else _parse(key, value)
        if sub is None:
            found.pop(key, None)
        else:
            found[sub.name] = sub
    return found


def put_subscription(producer_conf: dict[str, Any], topic: str, sub: Subscription) -> None:
    """Write ``sub`` under its name; returns once delivered, else raises RegistryError."""
    _write(producer_conf, topic, sub.name, sub.to_bytes())


def delete_subscription(producer_conf: dict[str, Any], topic: str, name: str) -> None:
    """Write the tombstone of ``name``; returns once delivered, else raises RegistryError."""
    _write(producer_conf, topic, name, None)


def _write(producer_conf: dict[str, Any], topic: str, name: str, value: bytes | None) -> None:
    producer = KafkaProducer(producer_conf)
    producer.produce(topic, value, name.encode())
    try:
        producer.flush(WRITE_TIMEOUT_S, what="subscription records", error=RegistryError)
    finally:
        producer.close(1.0)


def _read_to_end(base_conf: dict[str, Any], topic: str,
                 timeout_s: float) -> Iterator[tuple[str, bytes | None]]:
    """``(key, value)`` of every committed record, each partition in order, up to the end
    offsets of the moment each partition is reached. One consumer assigned to every partition
    (:func:`pipeline.changelog.read_partition` reads one partition per consumer, at least one
    fetch wait each: seconds for a CLI on a six-partition topic)."""
    consumer = Consumer({**base_conf, "group.id": READER_LABEL, "enable.auto.commit": False,
                         "enable.partition.eof": True, "isolation.level": "read_committed",
                         "fetch.wait.max.ms": FETCH_WAIT_MS})
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise ValueError(f"subscriptions topic {topic} does not exist "
                             "(create it with `trailpipe topics create`)")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        unread, deadline_s = set(meta.partitions), time.monotonic() + timeout_s
        while unread:
            if time.monotonic() > deadline_s:
                raise Unavailable(f"{topic} not read to its end within {timeout_s:g} s")
            for msg in consumer.consume(1000, POLL_S):
                err = msg.error()
                if err is None:
                    yield (msg.key() or b"").decode(), msg.value()
                elif err.code() == KafkaError._PARTITION_EOF:
                    unread.discard(msg.partition())
                else:
                    raise Unavailable(f"reading {topic} failed: {err}")
    except KafkaException as exc:  # metadata not answered within the timeout
        raise Unavailable(f"cannot read {topic}: {exc}") from exc
    finally:
        consumer.close()


def _parse(key: str, value: bytes) -> Subscription | None:
    try:
        sub = Subscription.from_bytes(value)
    except (pydantic.ValidationError, orjson.JSONDecodeError) as exc:
        # The error text may quote the record (and its hashing key): log its type only.
        log.warning("subscription_unparsable", name=key, error_type=type(exc).__name__)
        return None
    if sub.name != key:
        log.warning("subscription_key_mismatch", name=key)
        return None
    return sub
