"""The default pack as shipped: it loads cleanly, every rule's own tests pass, and over
generated traffic it stays quiet on benign events and fires on each attack scenario."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import pytest

from pipeline.rules.native.load import NativeRule, load_pack
from pipeline.rules.native.testing import run_rule_tests
from producers.generator.engine import Generator
from producers.generator.scenarios import SCENARIOS, scenario_of

PACK = load_pack()
ALL_RULES = PACK.rules + PACK.disabled

NO_INDEX: dict[str, str] = {}
"""Rules that must see every event, and why."""

EXPECTED = {
    "logging-tampering": {"trailpipe.cloudtrail.logging_stopped"},
    "root-login-no-mfa": {"trailpipe.root.activity", "trailpipe.console.login_without_mfa"},
    "access-denied-burst": {"trailpipe.access.denied_burst"},
    "iam-privesc": {"trailpipe.iam.access_key_for_other_user",
                    "trailpipe.iam.admin_policy_attached", "trailpipe.iam.passrole_compute",
                    "trailpipe.iam.login_profile_other_user"},
    "public-bucket-policy": set(),
    "kms-key-deletion": set(),
    "sg-open-world": set(),
    "console-brute-force": {"trailpipe.console.login_failure_burst",
                            "trailpipe.console.login_without_mfa"},
}
"""Alerts each scenario must raise from this side of the pack (the S3, KMS and EC2 rules
assert their own scenarios elsewhere); any other alert it raises must be below high."""

_THIS_SIDE = frozenset({"cloudtrail", "console", "iam", "sts", "root", "account", "org",
                        "config", "securityhub", "guardduty", "macie", "bedrock", "ses",
                        "signin", "standard", "region", "access"})
"""Id areas of the rules whose scenario expectations this file states."""

START_MS = 1_700_000_000_000
HIGH = ("high", "critical")


def test_pack_loads_without_problems() -> None:
    assert PACK.problems == ()
    assert len(ALL_RULES) >= 30


def test_rule_ids_are_unique_and_namespaced() -> None:
    ids = [r.meta.id for r in ALL_RULES]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("trailpipe.") for i in ids)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.meta.id)
def test_rule_own_tests_pass(rule: NativeRule) -> None:
    results = run_rule_tests(rule)
    assert {True, False} <= {t.expected for t in rule.spec.tests}, "needs a true and a false test"
    failed = [(r.test_name, r.expected, r.got, r.error) for r in results if not r.passed]
    assert failed == []


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.meta.id)
def test_rule_is_indexed_unless_documented(rule: NativeRule) -> None:
    assert (rule.meta.index is not None) != (rule.meta.id in NO_INDEX)


def _ms(event_time: str) -> int:
    return int(datetime.fromisoformat(event_time.replace("Z", "+00:00")).timestamp() * 1000)


def alerts(records: Iterable[dict[str, Any]],
           rules: Iterable[NativeRule]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(rule id, severity, record that opened the alert) for every alert: ``threshold``
    matches with one dedup key within ``dedup_period`` of the first make one alert (a plain
    model of the alerter's dedup, enough to judge noise)."""
    rules = tuple(rules)
    windows: dict[tuple[str, str], list[int]] = {}
    for record in records:
        for rule in rules:
            if not rule.matches(record):
                continue
            detail = rule.describe(record)
            key, now_ms = (rule.meta.id, detail.dedup_key), _ms(record["eventTime"])
            window = windows.get(key)
            if window is None or now_ms >= window[0] + rule.meta.dedup_period_ms:
                window = windows[key] = [now_ms, 0]
            window[1] += 1
            if window[1] == rule.meta.threshold:
                yield rule.meta.id, detail.severity, record


def test_benign_traffic_raises_no_high_alert() -> None:
    records = Generator(seed=7, start_ms=START_MS).records(50_000)
    loud = [(rule_id, sev) for rule_id, sev, _ in alerts(records, PACK.rules) if sev in HIGH]
    assert loud == []


def test_each_scenario_raises_its_alerts() -> None:
    gen = Generator(seed=11, start_ms=START_MS, scenarios=SCENARIOS, scenario_every=2_000)
    raised: dict[str, set[tuple[str, str]]] = {name: set() for name in SCENARIOS}
    for rule_id, severity, record in alerts(gen.records(2_000), PACK.rules):
        name = scenario_of(record)
        if name is not None:
            raised[name].add((rule_id, severity))
    for name, expected in EXPECTED.items():
        fired = {rule_id for rule_id, _ in raised[name]}
        assert expected <= fired, name
        extra_high = {r for r, sev in raised[name] if r not in expected and sev in HIGH}
        assert not {r for r in extra_high if r.split(".")[1] in _THIS_SIDE}, (name, extra_high)
