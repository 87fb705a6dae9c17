"""The subscriptions registry: the compacted ``[topics] siem_subscriptions`` topic, one JSON
record per subscription keyed by its name, a tombstone once revoked.

Readers take the whole topic each time (it holds one record per SIEM, so it is tiny): every
partition from its beginning to its end, no consumer group, nothing committed. Writers are
synchronous: a call returns once the broker has the record, or raises.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pydantic
from confluent_kafka.admin import AdminClient

from pipeline.changelog import read_partition
from pipeline.logs import get_logger
from pipeline.model import Unavailable
from pipeline.producer import DeliveryError, KafkaProducer
from pipeline.siem.model import Subscription

log = get_logger("pipeline.siem.registry")

READER_LABEL = "trailpipe.siem.registry"
"""The ``group.id`` the reader sets as a client label (it joins no group, commits nothing)."""
WRITE_TIMEOUT_S = 30.0


class RegistryError(DeliveryError):
    """A subscription record (or tombstone) was not made durable."""


def load_subscriptions(base_conf: dict[str, Any], topic: str, *,
                       timeout_s: float = 10.0) -> dict[str, Subscription]:
    """Every live subscription on ``topic`` by name: the latest record per key, a tombstone
    removes the key. A record that does not parse is logged (its key only: a record may hold a
    view's hashing key) and skipped. ``base_conf`` is :func:`pipeline.kafka.base_client_config`.

    Raises ValueError when ``topic`` does not exist, Unavailable when the whole topic is not
    read within ``timeout_s``."""
    deadline_s = time.monotonic() + timeout_s
    found: dict[str, Subscription] = {}
    for partition in _partitions(base_conf, topic, timeout_s):
        remaining_s = max(deadline_s - time.monotonic(), 0.1)
        records = read_partition(base_conf, topic, partition, group=READER_LABEL,
                                 timeout_s=remaining_s)
        for key, value in records:
            if value is None:
                found.pop(key, None)
                continue
            sub = _parse(key, value)
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


def _partitions(base_conf: dict[str, Any], topic: str, timeout_s: float) -> list[int]:
    admin = AdminClient(dict(base_conf))
    try:
        meta = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
    except Exception as exc:  # KafkaException: broker unreachable within the timeout
        raise Unavailable(f"cannot read the metadata of {topic}: {exc}") from exc
    if meta is None or meta.error is not None or not meta.partitions:
        raise ValueError(f"subscriptions topic {topic} does not exist "
                         "(create it with `trailpipe topics create`)")
    return sorted(meta.partitions)


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
