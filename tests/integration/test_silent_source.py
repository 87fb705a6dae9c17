"""Silent sources in real time: generated traffic paced at its event time, one (account,
region) stops for a while (the generator's account-silent shape); the aggregator reports it
once as source_silent within the configured time plus one window, and once as resumed."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from aggregate_kit import aggregator_topics, start_aggregator
from alert_kit import START_MS
from confluent_kafka import Producer
from kit import read_all

from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode
from pipeline.health.record import decode_health
from pipeline.shapes_config import AccountSilentConfig
from producers.generator.engine import Generator
from producers.generator.shapes import AccountSilent, event_ms, shaped_records

pytestmark = pytest.mark.integration

SILENT_AFTER_MS = 4_000
WINDOW_MS = 60_000


def _publish_paced(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    """Produce the records in real time: each as far after the first as its eventTime is."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                         "linger.ms": 5})
    ingest = IngestMeta(0, "test", "silent-source", "generated")
    first_ms, started_s = event_ms(records[0]), time.monotonic()
    for record in records:
        wait_s = started_s + (event_ms(record) - first_ms) / 1000 - time.monotonic()
        if wait_s > 0:
            producer.flush(10)
            time.sleep(wait_s)
        producer.produce(topic, encode(to_avro(record, ingest=ingest)), event_key(record))
        producer.poll(0)
    assert producer.flush(30) == 0


def test_a_silent_source_is_reported_once_and_so_is_its_return(
        kafka: Any, make_topic: Any, unique: str, tmp_path: Path) -> None:
    topics = aggregator_topics(make_topic)
    proc = start_aggregator(kafka.bootstrap, topics, unique, f"file://{tmp_path}/lake",
                            health={"silent_after_ms": SILENT_AFTER_MS}, grace_ms=0,
                            commit_interval_ms=200)
    try:
        _wait_for_assignment(proc)
        # Shapes start on a whole minute of event time: this one 4 s into the stream.
        gen = Generator(3, 3, 2, start_ms=START_MS - 4_000, events_per_second=60.0)
        silent = AccountSilent(AccountSilentConfig(start_after_ms=0, silent_ms=10_000), gen)
        records = list(shaped_records(gen, [silent], 60 * 20))  # 20 s
        _publish_paced(kafka.bootstrap, topics["events"], records)
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0, proc.log_path.read_text()[-3000:]
    reports = [decode_health(m.value()) for m in read_all(kafka.bootstrap, topics["health"])]
    sources = [r for r in reports if r["status"].startswith("source_")]
    subject = f"{silent.truth.account}|{silent.truth.region}"
    assert [(r["status"], r["subject"]) for r in sources] == [
        ("source_silent", subject), ("source_resumed", subject)]
    quiet_ms = sources[0]["metrics"]["silent_ms"]
    assert SILENT_AFTER_MS <= quiet_ms < SILENT_AFTER_MS + WINDOW_MS
    assert "logging may be stopped" in sources[0]["message"]


def _wait_for_assignment(proc: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while '"event": "partitions_assigned"' not in proc.log_path.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, \
            proc.log_path.read_text()[-3000:]
        time.sleep(0.2)
