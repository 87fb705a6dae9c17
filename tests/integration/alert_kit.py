"""Helpers for the alerter's integration tests: its topics, generated events with attack
scenarios produced as the producers key them, the alerter in- or out-of-process, and the
committed alerts read back."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from kit import read_all, start_daemon

from pipeline.config import Config, load_config
from pipeline.daemon import Context, build_registered
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode
from pipeline.rules.alert import decode_alert
from producers.generator.engine import Generator

REPO = Path(__file__).resolve().parents[2]
SIGMA_HQ = REPO.parent / "shared" / "corpus" / "sigma" / "aws_cloudtrail"
START_MS = 1_764_000_000_000


def alerter_topics(make_topic: Callable[..., str], partitions: int = 3) -> dict[str, str]:
    """Fresh topics for every role the alerter touches (by ``[topics]`` key)."""
    return {"events": make_topic("events", partitions),
            "alerter_hits": make_topic("hits", partitions),
            "alerter_state": make_topic("state", partitions, **{"cleanup.policy": "compact"}),
            "alerts": make_topic("alerts", 1), "health": make_topic("health", 1),
            "insights": make_topic("insights", 1),
            "dlq": make_topic("dlq", 1)}


def overrides(bootstrap: str, topics: dict[str, str], unique: str,
              **alerter: Any) -> dict[str, Any]:
    return {"kafka.bootstrap": bootstrap,
            **{f"topics.{role}": name for role, name in topics.items()},
            "alerter.group": f"alerter-{unique}", "alerter.transactional_id": f"tx-{unique}",
            **{f"alerter.{k}": v for k, v in alerter.items()}}


def generated(count: int, scenarios: Iterable[str] = (), seed: int = 7,
              every: int = 5_000) -> list[dict[str, Any]]:
    gen = Generator(seed, 4, 3, start_ms=START_MS, scenarios=list(scenarios),
                    events_per_second=200.0, scenario_every=every)
    return list(gen.records(count))


def produce_events(bootstrap: str, topic: str, records: Iterable[dict[str, Any]]) -> int:
    """Encode and produce like the producers do: keyed by account|region (murmur2)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 20, "partitioner": "murmur2_random"})
    ingest = IngestMeta(START_MS, "test", "alert-kit", "generated")
    count = 0
    for record in records:
        producer.produce(topic, encode(to_avro(record, ingest=ingest)), event_key(record))
        count += 1
        if count % 5_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    return count


def run_alerter(bootstrap: str, topics: dict[str, str], unique: str, *,
                idle_exit_s: float = 6.0, **alerter: Any) -> dict[str, Any]:
    """Run the alerter in this process until idle; its summary."""
    cfg: Config = load_config(env={}, overrides=overrides(bootstrap, topics, unique, **alerter))
    daemon = build_registered("alerter", Context(cfg, bootstrap))
    assert daemon.startup_problems() == []
    stats = daemon.run(idle_exit_s=idle_exit_s)
    return daemon.summary(stats)


def committed_alerts(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every alert record on ``topic`` a read_committed reader sees, in topic order."""
    return [decode_alert(m.value()) for m in read_all(bootstrap, topic, timeout_s=30)]


def start_alerter(bootstrap: str, topics: dict[str, str], unique: str, *,
                  idle_exit_s: float | None = None, **alerter: Any) -> subprocess.Popen[str]:
    """The alerter as a real process (so it can be SIGKILLed); its log goes to a temp file."""
    return start_daemon("alerter", overrides(bootstrap, topics, unique, **alerter),
                        idle_exit_s=idle_exit_s)
