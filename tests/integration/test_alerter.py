"""The alerter on a real broker: attack scenarios in generated traffic become exactly their
alerts on the alerts topic, committed in transactions with the offsets and window state."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from alert_kit import (
    SIGMA_HQ,
    alerter_topics,
    committed_alerts,
    generated,
    produce_events,
    run_alerter,
)
from kit import produce

from pipeline.health.record import encode_health, health_datum

INSIGHTS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cloudtrail" / \
    "awsdocs-cloudtrail-user-guide" / "records.jsonl"

pytestmark = pytest.mark.integration


def test_scenarios_raise_their_alerts_once_each(kafka, make_topic, unique) -> None:
    topics = alerter_topics(make_topic)
    records = generated(6_000, ["root-login-no-mfa", "kms-key-deletion", "sg-open-world"])
    produce_events(kafka.bootstrap, topics["events"], records)
    summary = run_alerter(kafka.bootstrap, topics, unique, sigma_paths=[str(SIGMA_HQ)])
    assert summary["consumed"] >= 6_000 and summary["dead_lettered"] == 0, summary
    alerts = committed_alerts(kafka.bootstrap, topics["alerts"])
    openings = [a for a in alerts if a["update"] == 0]
    ids = Counter(a["alert_id"] for a in openings)
    assert ids and max(ids.values()) == 1, ids
    rules = {a["rule_id"] for a in openings}
    assert {"trailpipe.kms.key_disabled_or_deleted", "trailpipe.ec2.security_group_open_world",
            "trailpipe.console.login_without_mfa"} <= rules, rules
    for alert in openings:
        assert alert["count"] >= 1 and alert["sample_event_ids"], alert
        assert alert["first_seen_ms"] <= alert["last_seen_ms"]


def test_insights_and_health_records_become_alerts(kafka, make_topic, unique) -> None:
    topics = alerter_topics(make_topic)
    insights = [r for r in map(json.loads, INSIGHTS.read_text().splitlines())
                if r.get("eventType") == "AwsCloudTrailInsight"]
    starts = {r["eventID"] for r in insights if r["insightDetails"]["state"] == "Start"}
    assert starts and len(starts) < len(insights)
    produce_events(kafka.bootstrap, topics["insights"], insights)
    failing = health_datum("archiver", "failing", "lake", "upload failed", stage="upload",
                           details={"error": "AccessDenied"}, at_ms=1_764_000_000_000)
    again = {**failing, "at_ms": 1_764_000_001_000}
    recovered = health_datum("archiver", "recovered", "lake", "works again")
    produce(kafka.bootstrap, topics["health"],
            [encode_health(r) for r in (failing, again, recovered)])
    # AWS's examples are a year apart: a grace that long, so the order in which the
    # partitions are read cannot make one of them late.
    summary = run_alerter(kafka.bootstrap, topics, unique, grace_ms=2 * 365 * 86_400_000)
    assert summary["dead_lettered"] == 0, summary
    openings = [a for a in committed_alerts(kafka.bootstrap, topics["alerts"])
                if a["update"] == 0]
    found = {e for a in openings if a["rule_id"] == "trailpipe.insights.anomaly"
             for e in a["sample_event_ids"]}
    assert found == starts
    health = [a for a in openings if a["rule_id"] == "trailpipe.pipeline.health"]
    assert len(health) == 1 and health[0]["severity"] == "high", health
    assert health[0]["title"] == "trailpipe archiver: failing (upload) on lake"
