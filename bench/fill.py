"""Fresh bench topics: create, fill with ~fixed-size CloudTrail-like records, delete.

Records are spread round-robin over the partitions (exact balance). The fill shows a progress
bar when stdout is a TTY.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import BenchError

_POOL = 256  # distinct payloads, cycled


@dataclass(frozen=True, slots=True)
class FillResult:
    records: int
    elapsed_s: float


def payloads(record_bytes: int, count: int = _POOL, seed: int = 7) -> list[bytes]:
    """``count`` distinct JSON audit-event-like values, each exactly ``record_bytes`` long
    (when ``record_bytes`` leaves room for the fixed fields; longer otherwise)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        params = {"bucketName": "lake", "key": ""}
        event = {
            "eventVersion": "1.09", "eventID": f"{rng.getrandbits(128):032x}",
            "eventTime": f"2025-01-01T00:{i % 60:02d}:{rng.randrange(60):02d}Z",
            "eventSource": "s3.amazonaws.com", "eventName": rng.choice(["GetObject", "PutObject"]),
            "awsRegion": "eu-west-1", "sourceIPAddress": f"10.0.{i % 256}.{rng.randrange(256)}",
            "userIdentity": {"type": "AssumedRole", "accountId": f"{rng.randrange(10**12):012d}"},
            "requestParameters": params,
        }
        pad = max(0, record_bytes - len(json.dumps(event, separators=(",", ":")).encode()))
        params["key"] = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789/", k=pad))
        out.append(json.dumps(event, separators=(",", ":")).encode())
    return out


def create_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30) -> None:
    """Create ``topic`` with the broker's default replication factor."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, -1)], operation_timeout=timeout_s)
    futures[topic].result(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # wait until every partition has a leader
        meta = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is not None and meta.error is None and len(meta.partitions) == partitions \
                and all(p.leader >= 0 for p in meta.partitions.values()):
            return
        time.sleep(0.2)
    raise BenchError(f"topic {topic} has no leader for every partition after {timeout_s}s")


def delete_bench_leftovers(bootstrap: str, topic: str, groups: list[str]) -> None:
    """Best effort: drop the topic and the consumer groups a scenario created."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    futures: dict[Any, Any] = dict(admin.delete_topics([topic], operation_timeout=30))
    if groups:
        futures.update(admin.delete_consumer_groups(groups, request_timeout=30))
    for fut in futures.values():
        with suppress(KafkaException):
            fut.result(timeout=30)


@contextmanager
def _progress(console: Console, total: int) -> Iterator[Any]:
    """A rich progress bar on a TTY; a no-op updater otherwise."""
    if not console.is_terminal:
        yield lambda _done: None
        return
    columns = (TextColumn("fill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("fill", total=total)
        yield lambda done: progress.update(task, completed=done)


class _Deliveries:
    def __init__(self) -> None:
        self.ok = 0
        self.errors: list[KafkaError] = []

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.ok += 1
        else:
            self.errors.append(err)


def _produce(producer: Producer, topic: str, value: bytes, partition: int,
             deliveries: _Deliveries) -> None:
    """Produce one record, waiting for queue space when the local queue is full."""
    while True:
        try:
            producer.produce(topic, value, partition=partition, on_delivery=deliveries)
            return
        except BufferError:
            producer.poll(0.05)


def fill_topic(bootstrap: str, topic: str, partitions: int, records: int, record_bytes: int,
               console: Console) -> FillResult:
    """Produce ``records`` values round-robin over ``partitions``; every one acknowledged."""
    values = payloads(record_bytes)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                         "batch.size": 1_000_000, "compression.type": "none"})
    deliveries = _Deliveries()
    start = time.perf_counter()
    with _progress(console, records) as update:
        for i in range(records):
            _produce(producer, topic, values[i % len(values)], i % partitions, deliveries)
            if i % 5_000 == 0:
                producer.poll(0)
                update(deliveries.ok)
        remaining = producer.flush(120)
        update(deliveries.ok)
    elapsed = time.perf_counter() - start
    if remaining or deliveries.errors or deliveries.ok != records:
        first = deliveries.errors[0] if deliveries.errors else "none"
        raise BenchError(f"fill incomplete: {deliveries.ok}/{records} acknowledged, "
                         f"{remaining} undelivered, first error: {first}")
    return FillResult(records, elapsed)
