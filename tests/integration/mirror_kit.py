"""Helpers for the mirror's integration tests: its topics, source records produced as the
producers write them (with where each landed), a subscription with a view on the registry, the
mirror in- or out-of-process, and the committed JSON records read back."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Message, Producer
from kit import read_all, start_daemon

from pipeline.config import load_config
from pipeline.daemon import Context, build_registered
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode
from pipeline.siem.model import Subscription, View, ViewFilter
from pipeline.siem.registry import put_subscription

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_000_000_000, "test", "mirror-kit", "records.jsonl")
Coordinate = tuple[int, int]
"""(partition, offset) of a source record."""


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def mirror_topics(make_topic: Callable[..., str], partitions: int = 3) -> dict[str, str]:
    """Fresh topics for every role the mirror touches (by ``[topics]`` key), plus ``view``
    (a view's own topic, as `siem subscribe` would create it)."""
    return {"events": make_topic("events", partitions),
            "events_json": make_topic("events-json", partitions),
            "alerts": make_topic("alerts", 1), "alerts_json": make_topic("alerts-json", 1),
            "siem_subscriptions": make_topic("subs", 1, **{"cleanup.policy": "compact"}),
            "dlq": make_topic("dlq", 1), "view": make_topic("view", partitions)}


def overrides(bootstrap: str, topics: dict[str, str], unique: str,
              **mirror: Any) -> dict[str, Any]:
    return {"kafka.bootstrap": bootstrap,
            **{f"topics.{role}": name for role, name in topics.items() if role != "view"},
            "mirror.group": f"mirror-{unique}", "mirror.transactional_id": f"tx-mirror-{unique}",
            **{f"mirror.{k}": v for k, v in mirror.items()}}


def produce_records(bootstrap: str, topic: str, records: list[dict[str, Any]], *,
                    copies: int = 1) -> dict[Coordinate, int]:
    """Encode and produce like the producers do (Avro, keyed account|region, murmur2),
    ``copies`` times over; where each copy landed: (partition, offset) -> its record's index
    in ``records``."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 20, "partitioner": "murmur2_random"})
    encoded = [(encode(to_avro(r, ingest=INGEST)), event_key(r)) for r in records]
    landed: dict[Coordinate, int] = {}
    errors: list[Any] = []

    def on_delivery(index: int) -> Callable[[Any, Message], None]:
        def done(err: Any, msg: Message) -> None:
            if err is not None:
                errors.append(err)
            else:
                landed[(msg.partition() or 0, msg.offset() or 0)] = index
        return done

    for index, (value, key) in list(enumerate(encoded)) * copies:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery(index))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors[:3]
    return landed


def busiest_account(records: Iterable[dict[str, Any]]) -> str:
    """The account that keys the most records (so a view of it is neither empty nor all)."""
    counts = Counter(event_key(r).split(b"|")[0].decode() for r in records)
    counts.pop("", None)
    return counts.most_common(1)[0][0]


def coordinates_of(account: str, records: list[dict[str, Any]],
                   landed: dict[Coordinate, int]) -> set[Coordinate]:
    """Where the records keyed by ``account`` landed (what a view of it must hold)."""
    prefix = f"{account}|".encode()
    return {c for c, i in landed.items() if event_key(records[i]).startswith(prefix)}


def put_view(bootstrap: str, topics: dict[str, str], name: str, account: str) -> Subscription:
    """A subscription whose view holds ``account``'s records, on the registry topic."""
    view = View(filter=ViewFilter(accounts=[account]), topic=topics["view"])
    sub = Subscription(name=name, topics=[view.topic], auth="mtls", view=view, created_ms=1)
    put_subscription({"bootstrap.servers": bootstrap}, topics["siem_subscriptions"], sub)
    return sub


def run_mirror(bootstrap: str, topics: dict[str, str], unique: str, *,
               idle_exit_s: float = 3.0, **mirror: Any) -> dict[str, Any]:
    """Run the mirror in this process until idle; its summary."""
    cfg = load_config(env={}, overrides=overrides(bootstrap, topics, unique, **mirror))
    daemon = build_registered("mirror", Context(cfg, bootstrap))
    assert daemon.startup_problems() == []
    stats = daemon.run(idle_exit_s=idle_exit_s)
    return daemon.summary(stats)


def start_mirror(bootstrap: str, topics: dict[str, str], unique: str, *,
                 idle_exit_s: float | None = None, **mirror: Any) -> subprocess.Popen[str]:
    """The mirror as a real process (so it can be SIGKILLed); its log goes to a temp file."""
    return start_daemon("mirror", overrides(bootstrap, topics, unique, **mirror),
                        idle_exit_s=idle_exit_s)


@dataclass(frozen=True, slots=True)
class Mirrored:
    """One committed JSON record as a read_committed reader sees it."""

    partition: int
    key: bytes | None
    value: Any  # the parsed JSON
    headers: dict[str, bytes]

    @property
    def source(self) -> Coordinate:
        return int(self.headers["x-source-partition"]), int(self.headers["x-source-offset"])


def committed_json(bootstrap: str, topic: str, expected: int | None = None,
                   timeout_s: float = 30) -> list[Mirrored]:
    """Every record on ``topic`` a read_committed reader sees (headers must not repeat)."""
    out = []
    for msg in read_all(bootstrap, topic, expected=expected, timeout_s=timeout_s):
        headers: list[Any] = list(msg.headers() or [])
        named: dict[str, bytes] = dict(headers)
        assert len(named) == len(headers), headers
        out.append(Mirrored(msg.partition() or 0, msg.key(), json.loads(msg.value() or b""),
                            named))
    return out
