"""Retro-hunt over a replay's rows: the live alerter's processor finds per rule what
record-by-record evaluation (``trailpipe rules eval``) finds, windows carry across batches, the
alerts file is byte-identical for the same replay, rules load or fail with every problem listed,
and no pipeline topic is a hunt's target."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, parse_event_time, to_avro
from pipeline.replay.canonical import sorted_rows
from pipeline.replay.hot import OFFSET, PARTITION
from pipeline.replay.hunt import hunt, load_hunt_rules
from pipeline.replay.hunt_out import alerts_topic, run_hunt, write_alerts
from pipeline.replay.to_topic import ToTopicError
from pipeline.rules.config import AlerterConfig
from pipeline.rules.evaluate import Evaluator
from pipeline.rules.ruleset import RuleSet, load_ruleset
from pipeline.topics_config import TopicsConfig

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
SIGMA = SHARED / "sigma" / "aws_cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
RECORDS = [json.loads(line) for p in sorted((SHARED / "cloudtrail").glob("*/records.jsonl"))
           for line in p.read_text().splitlines() if line.strip()]
STATE = {"grace_ms": 15 * 60_000, "max_keys": 100_000}
THRESHOLD_RULE = """id: test.denied
title: denied
severity: high
version: 1
threshold: 3
dedup_period_minutes: 5
event_names: [ListUsers]
"""


def replay_table(records: list[dict[str, Any]], seed: int) -> pa.Table:
    """``records`` as a replay's sorted matched table, read in a shuffled order (row i of
    the shuffle at partition i % 3, offset i)."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    decoded = events_decoder(Config())([wire.encode(to_avro(records[i], ingest=INGEST))
                                        for i in order])
    table = decoded.table.append_column(PARTITION,
                                        pa.array([i % 3 for i in order], pa.int32()))
    return sorted_rows(table.append_column(OFFSET, pa.array(order, pa.int64())))


@pytest.fixture(scope="module")
def sigma_rules() -> RuleSet:
    return load_hunt_rules(Config(), SIGMA)


def test_hunt_finds_per_rule_what_record_by_record_evaluation_finds(sigma_rules: RuleSet
                                                                    ) -> None:
    timed = [r for r in RECORDS if parse_event_time(r)[0] is not None]
    result = hunt(replay_table(timed, seed=1), sigma_rules, sample_size=1000, **STATE)
    # The newest record of each alert (opens and updates carry the running count and ids).
    final: dict[str, dict[str, Any]] = {}
    for alert in result.alerts:
        final[alert["alert_id"]] = alert
    counts: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    for alert in final.values():
        counts[alert["rule_id"]] += alert["count"]
        ids.setdefault(alert["rule_id"], set()).update(alert["sample_event_ids"])

    evaluator = Evaluator(sigma_rules, **STATE)
    expected = [m for r in timed for m in evaluator.feed(r)]
    assert counts == Counter(m.rule_id for m in expected)
    assert ids == {rid: {m.event_id for m in expected if m.rule_id == rid} for rid in counts}
    assert len(counts) >= 10 and result.summary()["late_dropped"] == 0


def test_a_threshold_window_carries_across_batches(tmp_path: Path) -> None:
    (tmp_path / "denied.yml").write_text(THRESHOLD_RULE)
    (tmp_path / "denied.py").write_text("def detect(event):\n    return True\n")
    rules = load_hunt_rules(Config(), tmp_path)
    base = {"eventVersion": "1.08", "eventName": "ListUsers", "eventSource": "iam.amazonaws.com",
            "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/eve"}}
    minutes = [0, 1, 2, 3, 10, 11]  # window 1: four matches; window 2: two (below 3)
    records = [{**base, "eventID": f"e{m}", "eventTime": f"2026-11-30T10:{m:02d}:30Z"}
               for m in minutes]
    result = hunt(replay_table(records, seed=2), rules, sample_size=10, batch_rows=2, **STATE)
    opens = [a for a in result.alerts if a["update"] == 0]
    assert [(a["count"], a["sample_event_ids"]) for a in opens] == [(3, ["e0", "e1", "e2"])]
    assert [a["count"] for a in result.alerts if a["update"] > 0] == [4]


SIGMA_RULE = """title: {name}
id: {uuid}
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
    selection:
        eventName: {name}
    condition: selection
level: medium
"""


def test_a_batch_spanning_more_than_the_grace_drops_nothing(tmp_path: Path) -> None:
    """Rule A's matches at 10:00 and 10:50 make one aggregated hit (one dedup hour), reported
    at its first row but dated by its newest match; rule B's match at 10:10 comes after it
    in the batch and would be late by 40 min if stage 2 took the hits in row order."""
    for name, uuid in (("ListUsers", "0f0c5e0a-0000-4000-8000-00000000000a"),
                       ("ListRoles", "0f0c5e0a-0000-4000-8000-00000000000b")):
        (tmp_path / f"{name}.yml").write_text(SIGMA_RULE.format(name=name, uuid=uuid))
    rules = load_hunt_rules(Config(), tmp_path)
    base = {"eventVersion": "1.08", "eventSource": "iam.amazonaws.com",
            "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/eve"}}
    records = [{**base, "eventName": name, "eventID": f"{name}-{m}",
                "eventTime": f"2026-11-30T10:{m:02d}:00Z"}
               for name, m in (("ListUsers", 0), ("ListRoles", 10), ("ListUsers", 50))]
    result = hunt(replay_table(records, seed=5), rules, sample_size=10, **STATE)
    assert result.summary()["late_dropped"] == 0
    assert sorted((a["title"], a["count"]) for a in result.alerts) == [
        ("ListRoles", 1), ("ListUsers", 2)]


LOGIN = {"eventVersion": "1.08", "eventName": "ConsoleLogin",
         "eventSource": "signin.amazonaws.com", "awsRegion": "us-east-1",
         "recipientAccountId": "111122223333", "sourceIPAddress": "198.51.100.7",
         "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/eve"}}


def test_a_chained_correlation_fires_across_batches() -> None:
    """The pack's burst-then-success: five refused sign-ins fire the inner event_count
    correlation (which alerts not on its own), whose chained hit with the later success
    fires the outer temporal_ordered one."""
    rules = load_hunt_rules(Config(), None)
    records = [{**LOGIN, "eventID": f"fail-{m}", "eventTime": f"2026-11-30T10:0{m}:00Z",
                "responseElements": {"ConsoleLogin": "Failure"}} for m in range(5)]
    records.append({**LOGIN, "eventID": "ok", "eventTime": "2026-11-30T10:07:00Z",
                    "responseElements": {"ConsoleLogin": "Success"}})
    result = hunt(replay_table(records, seed=6), rules, sample_size=10, batch_rows=2, **STATE)
    fired = [(a["title"], a["sample_event_ids"]) for a in result.alerts
             if a["kind"] == "correlation"]
    assert fired == [("Console sign-in succeeded after a burst of failures from the same "
                      "address", ["fail-4", "ok"])]  # the inner alert by its last event


def test_the_end_of_the_replay_closes_windows_decided_at_their_close(tmp_path: Path) -> None:
    (tmp_path / "rare.yml").write_text(SIGMA_RULE.format(
        name="ListUsers", uuid="0f0c5e0a-0000-4000-8000-00000000000c") + """name: list_users
---
title: Rare ListUsers
id: 0f0c5e0a-0000-4000-8000-00000000000d
correlation:
    type: event_count
    rules: [list_users]
    group-by: [sourceIPAddress]
    timespan: 10m
    condition: {lt: 2}
level: low
""")
    rules = load_hunt_rules(Config(), tmp_path)
    records = [{**LOGIN, "eventName": "ListUsers", "eventSource": "iam.amazonaws.com",
                "eventID": "lu", "eventTime": "2026-11-30T10:00:00Z"}]
    result = hunt(replay_table(records, seed=7), rules, sample_size=10, **STATE)
    assert [(a["title"], a["sample_event_ids"]) for a in result.alerts
            if a["kind"] == "correlation"] == [("Rare ListUsers", ["lu"])]


def test_the_same_replay_gives_byte_identical_alerts(tmp_path: Path) -> None:
    cfg = Config(alerter=AlerterConfig(sigma_paths=[SIGMA]))
    rules = load_hunt_rules(cfg, None)
    assert cfg.alerter.default_pack and rules.correlations  # the pack, correlations and all
    files = []
    for seed in (3, 4):
        table = replay_table(RECORDS, seed)
        result = hunt(table, rules, sample_size=cfg.alerter.sample_size, **STATE)
        files.append(write_alerts(result.alerts, tmp_path / f"alerts-{seed}.jsonl"))
        assert result.alerts and all(a["created_ms"] == a["last_seen_ms"]
                                     for a in result.alerts)
    assert files[0].sha256 == files[1].sha256
    assert (tmp_path / "alerts-3.jsonl").read_bytes() == (tmp_path / "alerts-4.jsonl").read_bytes()
    lines = (tmp_path / "alerts-3.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["alert_id"] for line in lines] == [
        a["alert_id"] for a in result.alerts]
    assert not list(tmp_path.glob("*.partial"))


def test_configured_rules_load_as_the_alerter_loads_them() -> None:
    cfg = Config(alerter=AlerterConfig(disabled=["trailpipe.access.denied_burst"]))
    rules = load_hunt_rules(cfg, None)
    assert sorted(rules.rules) == sorted(load_ruleset(cfg.alerter).rules)
    assert "trailpipe.access.denied_burst" not in rules.rules


def test_a_rules_path_loads_just_its_rules(sigma_rules: RuleSet) -> None:
    one = sorted(SIGMA.glob("*.yml"))[0]
    assert len(load_hunt_rules(Config(), one).rules) == 1
    assert len(sigma_rules.rules) == len(list(SIGMA.glob("*.yml")))


def test_rules_that_do_not_load_are_all_listed(tmp_path: Path) -> None:
    (tmp_path / "one.yml").write_text("title: no detection\nlogsource: {product: aws}\n")
    (tmp_path / "two.yml").write_text("title: [unclosed\n")
    with pytest.raises(ValueError, match="rules do not load") as raised:
        load_hunt_rules(Config(), tmp_path)
    assert "one.yml" in str(raised.value) and "two.yml" in str(raised.value)
    with pytest.raises(ValueError, match="no such file"):
        load_hunt_rules(Config(), tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no rules found"):
        load_hunt_rules(Config(), empty)


def test_no_pipeline_topic_takes_hunt_alerts() -> None:
    topics = TopicsConfig()
    with pytest.raises(ToTopicError, match="the live alerts topic"):
        alerts_topic(topics, "audit.alerts.v1")
    for name in (*topics.names(), "audit.anything.v1"):
        with pytest.raises(ToTopicError, match="refusing to write hunt alerts"):
            alerts_topic(topics, name)
    assert alerts_topic(topics, "replay.case-7.alerts") == "replay.case-7.alerts"


def test_the_hunt_step_writes_the_file_it_summarises(sigma_rules: RuleSet, tmp_path: Path
                                                     ) -> None:
    out = tmp_path / "alerts.jsonl"
    summary = run_hunt(Config(), {}, sigma_rules, replay_table(RECORDS, seed=8),
                       alerts_out=out, alerts_to=None)["hunt"]
    lines = out.read_bytes().splitlines()
    assert summary["alerts_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert summary["alerts"] + summary["alert_updates"] == len(lines) > 0
    assert summary["rules"] == len(sigma_rules.rules) and "alerts_topic" not in summary
    assert summary["events"] == len(RECORDS) and summary["hits"] >= summary["alerts"]
