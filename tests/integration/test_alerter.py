"""The alerter on a real broker: attack scenarios in generated traffic become exactly their
alerts on the alerts topic, committed in transactions with the offsets and window state."""

from __future__ import annotations

from collections import Counter

import pytest
from alert_kit import (
    SIGMA_HQ,
    alerter_topics,
    committed_alerts,
    generated,
    produce_events,
    run_alerter,
)

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
