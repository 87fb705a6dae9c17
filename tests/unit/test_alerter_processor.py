"""The alerter's processor without Kafka: events in → hits out (the repartition records);
hits in → alerts and changelog records out; a rule that raises is counted and reported on the
health topic while the others go on; a forgotten partition is restored from its changelog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from consumers.alerter.hits import RawDecoder
from consumers.alerter.processor import AlerterProcessor, Topics
from pipeline.batches import COORDINATE_SCHEMA, with_coordinates
from pipeline.events.batch import AvroBatchDecoder
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.schemas import default_registry
from pipeline.events.wire import encode
from pipeline.health.record import decode_health
from pipeline.model import KafkaRecord
from pipeline.rules.alert import decode_alert
from pipeline.rules.native.load import load_native
from pipeline.rules.ruleset import RuleSet, merge_loads
from pipeline.rules.sigma.loader import SigmaLoad

TOPICS = Topics(events="ev", insights="in", hits="hits", alerts="alerts", state="state",
                health="health")
RULE = """id: test.{name}
title: {name}
severity: high
version: 1
event_names: [StopLogging]
{extra}"""
STOP = {"eventVersion": "1.08", "eventTime": "2026-11-30T10:00:00Z", "eventName": "StopLogging",
        "eventSource": "cloudtrail.amazonaws.com", "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333", "sourceIPAddress": "203.0.113.9",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory"}}


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    (tmp_path / "good.yml").write_text(RULE.format(name="good", extra=""))
    (tmp_path / "good.py").write_text("def detect(event):\n    return True\n")
    (tmp_path / "bad.yml").write_text(RULE.format(name="bad", extra=""))
    (tmp_path / "bad.py").write_text("def detect(event):\n    raise KeyError('boom')\n")
    loaded = merge_loads(SigmaLoad(rules=[], correlations=[], problems=[]),
                         load_native([tmp_path]), [])
    assert loaded.problems == []
    return loaded


def table(topic: str, values: list[bytes], rows: Any) -> pa.Table:
    n = rows.num_rows
    coordinates = pa.Table.from_arrays(
        [pa.array([topic] * n), pa.array([0] * n, pa.int32()), pa.array(range(n), pa.int64()),
         pa.array([1_764_496_800_000] * n, pa.int64()), pa.array([None] * n, pa.binary()),
         pa.array([len(v) for v in values], pa.int32())], schema=COORDINATE_SCHEMA)
    return with_coordinates(rows, coordinates)


def events_table(records: list[dict[str, Any]]) -> pa.Table:
    values = [encode(to_avro(r, ingest=IngestMeta(1, "t", "p", "l"))) for r in records]
    return table("ev", values, AvroBatchDecoder(reader=default_registry().newest())(values).table)


def hits_table(records: list[KafkaRecord]) -> pa.Table:
    values = [r.value or b"" for r in records]
    return table("hits", values, RawDecoder()(values).table)


def test_events_to_hits_to_alerts_with_a_failing_rule_reported(rules: RuleSet) -> None:
    restored: list[int] = []
    processor = AlerterProcessor(rules, TOPICS, lambda p: restored.append(p) or [],
                                 grace_ms=60_000, max_keys=100, sample_size=5)
    out = list(processor.process_batch(events_table([STOP, {**STOP, "eventID": "e2"}])))
    hits = [r for r in out if r.topic == "hits"]
    health = [r for r in out if r.topic == "health"]
    assert len(hits) == 2 and all(r.key == b"test.good\x1f111122223333|arn:aws:iam::"
                                  b"111122223333:user/mallory" for r in hits)
    assert len(health) == 1 and health[0].key == b"alerter|test.bad"
    reported = decode_health(health[0].value)
    assert (reported["status"], reported["subject"], reported["metrics"]) == (
        "rule_failing", "test.bad", {"errors": 2.0, "errors_total": 2.0})
    assert rules.errors["test.bad"] == 2

    out = list(processor.process_batch(hits_table(hits)))
    alerts = [decode_alert(r.value or b"") for r in out if r.topic == "alerts"]
    assert [(a["rule_id"], a["update"], a["count"]) for a in alerts] == [
        ("test.good", 0, 1), ("test.good", 1, 2)]
    state = [r for r in out if r.topic == "state"]
    assert state and all(r.partition == 0 for r in state)
    assert restored == [0]

    processor.drop([("hits", 0)])  # a rewind: the partition's state is read back
    changelog = [((r.key or b"").decode(), r.value) for r in state]
    again = AlerterProcessor(rules, TOPICS, lambda p: changelog, grace_ms=60_000, max_keys=100,
                             sample_size=5)
    more = list(again.process_batch(hits_table(hits[:1])))
    assert [decode_alert(r.value or b"")["count"] for r in more if r.topic == "alerts"] == [3]
