"""The alerter's ``labelled_counts()``: ``trailpipe_alerts_total`` by severity and rule id counts
the new alerts it emitted (not their updates), so it sums to the summary's ``alerts``."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_alerter_processor import STOP, TOPICS, events_table, hits_table

from consumers.alerter.processor import ALERTS_BY_LABEL, AlerterProcessor
from pipeline.metrics import names
from pipeline.metrics.registry import DaemonMetrics
from pipeline.rules.alert import decode_alert
from pipeline.rules.native.load import load_native
from pipeline.rules.ruleset import RuleSet, merge_loads
from pipeline.rules.sigma.loader import SigmaLoad

RULE = """id: test.{name}
title: {name}
severity: {severity}
version: 1
event_names: [{event}]
"""


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    for name, severity, event in (("stop", "high", "StopLogging"),
                                  ("delete", "low", "DeleteTrail")):
        (tmp_path / f"{name}.yml").write_text(RULE.format(name=name, severity=severity,
                                                          event=event))
        (tmp_path / f"{name}.py").write_text("def detect(event):\n    return True\n")
    loaded = merge_loads(SigmaLoad(rules=[], correlations=[], problems=[]),
                         load_native([tmp_path]), [])
    assert loaded.problems == []
    return loaded


def user(name: str) -> dict[str, str]:
    return {"type": "IAMUser", "arn": f"arn:aws:iam::111122223333:user/{name}"}


def test_new_alerts_by_severity_and_rule_sum_to_the_summary_and_skip_updates(
        rules: RuleSet) -> None:
    processor = AlerterProcessor(rules, TOPICS, lambda _p: [], grace_ms=60_000, max_keys=100,
                                 sample_size=5)
    assert processor.labelled_counts() == {ALERTS_BY_LABEL: {}}
    events = [{**STOP, "eventID": "1", "userIdentity": user("mallory")},
              {**STOP, "eventID": "2", "userIdentity": user("mallory")},  # an update
              {**STOP, "eventID": "3", "userIdentity": user("eve")},
              {**STOP, "eventID": "4", "eventName": "DeleteTrail", "userIdentity": user("eve")}]
    hits = [r for r in processor.process_batch(events_table(events)) if r.topic == "hits"]
    out = [decode_alert(r.value or b"") for r in processor.process_batch(hits_table(hits))
           if r.topic == "alerts"]

    opened = [(a["severity"], a["rule_id"]) for a in out if a["update"] == 0]
    assert sorted(opened) == [("high", "test.stop"), ("high", "test.stop"),
                              ("low", "test.delete")]
    assert any(a["update"] > 0 for a in out)  # updates were emitted, and are not counted
    counts = processor.labelled_counts()[ALERTS_BY_LABEL]
    assert counts == {("high", "test.stop"): 2, ("low", "test.delete"): 1}
    stats = processor.stats()
    assert sum(counts.values()) == stats["alerts"] and stats["updates"] > 0


def test_the_metric_is_declared_and_exported_with_its_labels(rules: RuleSet) -> None:
    labels, _help = names.LABELLED[ALERTS_BY_LABEL]
    assert labels == ("severity", "rule")
    processor = AlerterProcessor(rules, TOPICS, lambda _p: [], grace_ms=60_000, max_keys=100,
                                 sample_size=5)
    hits = [r for r in processor.process_batch(events_table([STOP])) if r.topic == "hits"]
    list(processor.process_batch(hits_table(hits)))
    metrics = DaemonMetrics("alerter", "g", labelled=processor.labelled_counts)
    assert metrics.registry.get_sample_value(
        ALERTS_BY_LABEL, {"daemon": "alerter", "severity": "high", "rule": "test.stop"}) == 1
