"""Offline evaluation (``rules eval``'s core): per-event matches, threshold openings,
correlations with their eventIDs, chained correlations, lateness and end of input. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.rules.evaluate import Evaluator, Match, evaluate
from pipeline.rules.model import CorrelationKind, CorrelationSpec, Detail, RuleMeta
from pipeline.rules.ruleset import RuleSet

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MIN_MS = 60_000


@dataclass(frozen=True)
class NameRule:
    """Matches events of one eventName; dedup key: the source IP."""

    meta: RuleMeta
    event_name: str

    def matches(self, event: Mapping[str, Any]) -> bool:
        return event.get("eventName") == self.event_name

    def describe(self, event: Mapping[str, Any]) -> Detail:
        return Detail(title=f"{self.meta.title} from {event['sourceIPAddress']}",
                      dedup_key=str(event["sourceIPAddress"]), severity=self.meta.severity)


def rule(rule_id: str, event_name: str, threshold: int = 1) -> NameRule:
    meta = RuleMeta(id=rule_id, title=rule_id.title(), severity="high", source="test",
                    threshold=threshold, dedup_period_ms=60 * MIN_MS)
    return NameRule(meta, event_name)


def correlation(cid: str, kind: CorrelationKind, rules: tuple[str, ...],
                condition: Mapping[str, int], generate: bool = False) -> CorrelationSpec:
    meta = RuleMeta(id=cid, title=f"correlation {cid}", severity="critical", source="test")
    return CorrelationSpec(meta=meta, kind=kind, rules=rules, group_by=("sourceIPAddress",),
                           fields={r: {} for r in rules}, timespan_ms=15 * MIN_MS,
                           condition=condition, generate=generate)


def record(event_id: str, name: str, at_min: float, ip: str = "192.0.2.1") -> dict[str, Any]:
    when = (T0 + timedelta(minutes=at_min)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"eventID": event_id, "eventName": name, "eventTime": when, "sourceIPAddress": ip,
            "recipientAccountId": "111122223333"}


def run(ruleset: RuleSet, records: list[dict[str, Any]], grace_min: int = 5) -> list[Match]:
    return list(evaluate(ruleset, records, grace_ms=grace_min * MIN_MS, max_keys=1000))


def test_a_threshold_one_rule_reports_every_matching_event_without_dedup():
    ruleset = RuleSet({"stop": rule("stop", "StopLogging")}, {})
    records = [record("e1", "StopLogging", 0), record("e2", "ListBuckets", 1),
               record("e3", "StopLogging", 2), record("e4", "StopLogging", 3)]
    matches = run(ruleset, records)
    assert [(m.rule_id, m.event_id, m.event_ids) for m in matches] == [
        ("stop", "e1", None), ("stop", "e3", None), ("stop", "e4", None)]
    assert matches[0].title == "Stop from 192.0.2.1"  # the rule's describe(), per event
    assert matches[0].as_json() == {"rule_id": "stop", "title": "Stop from 192.0.2.1",
                                    "eventID": "e1", "severity": "high"}


def test_a_threshold_rule_reports_the_event_that_reaches_it_once_per_window():
    ruleset = RuleSet({"burst": rule("burst", "GetSecretValue", threshold=3)}, {})
    records = [record(f"e{i}", "GetSecretValue", i) for i in range(1, 6)]
    records.append(record("other-ip", "GetSecretValue", 6, ip="198.51.100.7"))
    records += [record(f"n{i}", "GetSecretValue", 60 + i) for i in range(1, 4)]  # next hour
    matches = run(ruleset, records)
    assert [(m.event_id, m.event_ids) for m in matches] == [
        ("e3", ("e1", "e2", "e3")), ("n3", ("n1", "n2", "n3"))]
    assert matches[0].as_json()["eventIDs"] == ["e1", "e2", "e3"]


def test_a_correlation_reports_its_window_and_its_rules_stay_quiet_without_generate():
    rules = {"failed": rule("failed", "ConsoleLogin")}
    corr = correlation("burst", "event_count", ("failed",), {"gte": 3})
    records = [record("a1", "ConsoleLogin", 0), record("b1", "ConsoleLogin", 1, "198.51.100.7"),
               record("a2", "ConsoleLogin", 2), record("a3", "ConsoleLogin", 4),
               record("a4", "ConsoleLogin", 30)]  # outside the 15-minute window
    matches = run(RuleSet(rules, {"burst": corr}), records)
    assert [(m.rule_id, m.event_id, m.event_ids) for m in matches] == [
        ("burst", "a3", ("a1", "a2", "a3"))]
    assert matches[0].severity == "critical" and matches[0].title == "correlation burst"


def test_generate_true_reports_the_rule_too():
    rules = {"failed": rule("failed", "ConsoleLogin")}
    corr = correlation("burst", "event_count", ("failed",), {"gte": 2}, generate=True)
    matches = run(RuleSet(rules, {"burst": corr}),
                  [record("a1", "ConsoleLogin", 0), record("a2", "ConsoleLogin", 1)])
    assert [(m.rule_id, m.event_id) for m in matches] == [
        ("failed", "a1"), ("failed", "a2"), ("burst", "a2")]


def test_a_chained_correlation_lists_the_inner_windows_events():
    rules = {"failed": rule("failed", "ConsoleLogin"), "ok": rule("ok", "CheckMfa")}
    inner = correlation("burst", "event_count", ("failed",), {"gte": 2})
    outer = correlation("then", "temporal_ordered", ("burst", "ok"), {})
    records = [record("ok0", "CheckMfa", -20), record("f1", "ConsoleLogin", 1),
               record("f2", "ConsoleLogin", 2), record("ok1", "CheckMfa", 3)]
    matches = run(RuleSet(rules, {"burst": inner, "then": outer}), records)
    assert [(m.rule_id, m.event_id, m.event_ids) for m in matches] == [
        ("then", "ok1", ("f1", "f2", "ok1"))]


def test_a_window_decided_at_its_close_fires_when_event_time_passes_it_or_input_ends():
    rules = {"login": rule("login", "ConsoleLogin")}
    corr = correlation("rare", "event_count", ("login",), {"lt": 2})
    ruleset = RuleSet(rules, {"rare": corr})
    records = [record("x1", "ConsoleLogin", 0), record("y1", "ConsoleLogin", 30, "198.51.100.7")]
    evaluator = Evaluator(ruleset, grace_ms=5 * MIN_MS, max_keys=1000)
    assert evaluator.feed(records[0]) == []
    # 30 min > 15 min window + 5 min grace: x1's window closes with one login (< 2).
    assert [(m.event_id, m.event_ids) for m in evaluator.feed(records[1])] == [("x1", ("x1",))]
    assert [(m.event_id, m.event_ids) for m in evaluator.finish()] == [("y1", ("y1",))]
    assert evaluator.stats()["matches"] == 2


def test_hits_later_than_the_grace_are_dropped_and_counted():
    ruleset = RuleSet({"burst": rule("burst", "GetSecretValue", threshold=2)}, {})
    records = [record("e1", "GetSecretValue", 30), record("late", "GetSecretValue", 0),
               record("e2", "GetSecretValue", 31)]
    evaluator = Evaluator(ruleset, grace_ms=5 * MIN_MS, max_keys=1000)
    matches = [m for r in records for m in evaluator.feed(r)]
    assert [(m.event_id, m.event_ids) for m in matches] == [("e2", ("e1", "e2"))]
    assert evaluator.stats()["late_dropped"] == 1
    # With a grace that covers it, the late hit counts (same hour window) and reaches 2.
    assert [(m.event_id, m.event_ids) for m in run(ruleset, records, grace_min=60)] == [
        ("late", ("e1", "late"))]


@pytest.mark.parametrize("when", [None, "yesterday", 1700000000])
def test_a_record_without_a_valid_event_time_is_refused(when):
    evaluator = Evaluator(RuleSet({"stop": rule("stop", "StopLogging")}, {}), grace_ms=0,
                          max_keys=10)
    bad = {**record("e1", "StopLogging", 0), "eventTime": when}
    with pytest.raises(ValueError, match="eventTime"):
        evaluator.feed(bad)
    assert evaluator.stats()["records"] == 0


def test_a_failing_rule_is_counted_and_the_others_still_match():
    class Broken(NameRule):
        def matches(self, event: Mapping[str, Any]) -> bool:
            raise KeyError("boom")

    broken = Broken(rule("broken", "StopLogging").meta, "StopLogging")
    ruleset = RuleSet({"broken": broken, "stop": rule("stop", "StopLogging")}, {})
    evaluator = Evaluator(ruleset, grace_ms=0, max_keys=10)
    assert [m.rule_id for m in evaluator.feed(record("e1", "StopLogging", 0))] == ["stop"]
    assert evaluator.stats()["rule_errors"] == 1
