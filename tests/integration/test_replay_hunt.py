"""Retro-hunt alerts into a replay.* topic on the real broker: each alert read back is the
alerter's Avro Alert, keyed by its alert_id, equal to what the hunt returned; the live alerts
topic is refused before anything is produced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kit import delete_topics, read_all

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.kafka import producer_config
from pipeline.replay.canonical import sorted_rows
from pipeline.replay.hot import OFFSET, PARTITION
from pipeline.replay.hunt import hunt, load_hunt_rules
from pipeline.replay.hunt_out import produce_alerts
from pipeline.replay.to_topic import ToTopicError
from pipeline.rules.alert import decode_alert

pytestmark = pytest.mark.integration
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
INGEST = IngestMeta(1_764_000_000_000, "test", "hunt", "records.jsonl")


@pytest.fixture
def replay_topic(kafka: Any, unique: str) -> Iterator[str]:
    bootstrap = kafka.bootstrap
    name = f"replay.hunt-{unique}.alerts"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 3, 1)])[name].result(timeout=30)
    yield name
    delete_topics(bootstrap, [name])


def corpus_table() -> pa.Table:
    datums = [to_avro(json.loads(line), ingest=INGEST)
              for p in sorted((SHARED / "cloudtrail").glob("*/records.jsonl"))
              for line in p.read_text().splitlines() if line.strip()]
    table = events_decoder(Config())([wire.encode(d) for d in datums]).table
    n = table.num_rows
    table = table.append_column(PARTITION, pa.array([0] * n, pa.int32()))
    return sorted_rows(table.append_column(OFFSET, pa.array(range(n), pa.int64())))


def test_hunt_alerts_land_in_a_replay_topic_and_never_in_the_live_one(
        kafka: Any, replay_topic: str) -> None:
    bootstrap = kafka.bootstrap
    cfg = Config()
    rules = load_hunt_rules(cfg, SHARED / "sigma" / "aws_cloudtrail")
    alerts = hunt(corpus_table(), rules, grace_ms=cfg.alerter.grace_ms,
                  max_keys=cfg.alerter.max_state_keys,
                  sample_size=cfg.alerter.sample_size).alerts
    assert alerts
    conf = producer_config({"bootstrap.servers": bootstrap}, {})
    with pytest.raises(ToTopicError, match="live alerts topic"):
        produce_alerts(conf, cfg.topics, cfg.topics.alerts, alerts, timeout_s=30)

    assert produce_alerts(conf, cfg.topics, replay_topic, alerts, timeout_s=30) == len(alerts)
    got = read_all(bootstrap, replay_topic, expected=len(alerts))
    back = sorted(((m.key(), decode_alert(m.value() or b"")) for m in got),
                  key=lambda kv: (kv[0], kv[1]["update"]))
    want = sorted(((a["alert_id"].encode(), a) for a in alerts),
                  key=lambda kv: (kv[0], kv[1]["update"]))
    assert back == want
