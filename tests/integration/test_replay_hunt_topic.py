"""Retro-hunt alerts into a replay.* topic on the real broker: the topic is created like the
live alerts topic, each alert read back is the alerter's Avro Alert keyed by its alert_id and
equal to the line of the alerts file; the live alerts topic is refused and stays empty."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from confluent_kafka.admin import AdminClient
from kit import delete_topics, end_offsets, read_all
from replay_kit import KEEP  # alert timestamps are event times, years old: keep them

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.replay.canonical import sorted_rows
from pipeline.replay.hot import OFFSET, PARTITION
from pipeline.replay.hunt import load_hunt_rules
from pipeline.replay.hunt_out import run_hunt
from pipeline.replay.to_topic import ToTopicError
from pipeline.rules.alert import decode_alert
from pipeline.topics_config import TopicsConfig

pytestmark = pytest.mark.integration
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
INGEST = IngestMeta(1_764_000_000_000, "test", "hunt", "records.jsonl")


@pytest.fixture
def replay_topic(kafka: Any, unique: str) -> Iterator[str]:
    """The name of a replay.* topic, deleted after the test (the hunt creates it)."""
    name = f"replay.hunt-{unique}.alerts"
    yield name
    delete_topics(kafka.bootstrap, [name])


def corpus_table() -> pa.Table:
    datums = [to_avro(json.loads(line), ingest=INGEST)
              for p in sorted((SHARED / "cloudtrail").glob("*/records.jsonl"))
              for line in p.read_text().splitlines() if line.strip()]
    table = events_decoder(Config())([wire.encode(d) for d in datums]).table
    n = table.num_rows
    table = table.append_column(PARTITION, pa.array([0] * n, pa.int32()))
    return sorted_rows(table.append_column(OFFSET, pa.array(range(n), pa.int64())))


def test_hunt_alerts_land_in_a_replay_topic_and_never_in_the_live_one(
        kafka: Any, make_topic: Callable[..., str], replay_topic: str, tmp_path: Path) -> None:
    live = make_topic("alerts", partitions=2, **KEEP)
    cfg = Config(topics=TopicsConfig(alerts=live))
    rules = load_hunt_rules(cfg, SHARED / "sigma" / "aws_cloudtrail")
    base = {"bootstrap.servers": kafka.bootstrap}
    with pytest.raises(ToTopicError, match="live alerts topic"):
        run_hunt(cfg, base, rules, corpus_table(), alerts_out=None, alerts_to=live)

    summary = run_hunt(cfg, base, rules, corpus_table(), alerts_out=tmp_path / "alerts.jsonl",
                       alerts_to=replay_topic)["hunt"]
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alerts and summary["alerts_produced"] == len(alerts)
    assert summary["alerts_topic"] == replay_topic
    assert summary["alerts"] + summary["alert_updates"] == len(alerts)
    got = read_all(kafka.bootstrap, replay_topic, expected=len(alerts))
    assert len(read_partitions(kafka.bootstrap, replay_topic)) == 2  # like the live topic
    back = sorted(((m.key(), decode_alert(m.value() or b"")) for m in got),
                  key=lambda kv: (kv[0], kv[1]["update"]))
    want = sorted(((a["alert_id"].encode(), a) for a in alerts),
                  key=lambda kv: (kv[0], kv[1]["update"]))
    assert back == want
    assert end_offsets(kafka.bootstrap, live, 2) == {0: 0, 1: 0}


def read_partitions(bootstrap: str, topic: str) -> dict[int, Any]:
    partitions: dict[int, Any] = AdminClient({"bootstrap.servers": bootstrap}).list_topics(
        topic, timeout=10).topics[topic].partitions
    return partitions
