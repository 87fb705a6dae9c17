"""The default rules as the alerter runs them (the pack's native rules and its Sigma
correlations, threshold/dedup windows, chained correlations): each generator attack scenario
raises exactly its expected alerts, and steady benign traffic raises no high or critical one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pipeline.rules.config import AlerterConfig
from pipeline.rules.model import AlertDraft
from pipeline.rules.ruleset import RuleSet, load_ruleset
from pipeline.rules.state.stage import Stage
from producers.generator.engine import Generator
from producers.generator.scenarios import SCENARIOS, scenario_of

START_MS = 1_764_000_000_000
BRUTE_FORCE_THEN_SUCCESS = "d5e9b20a-2d31-4527-8053-84acb9c0a833"
ADMIN_BACKDOOR = "31a71406-3d92-40a8-86da-3167e05fb422"
STOP_LOGGING_THEN_DESTROY = "047ced12-dbce-445e-9ea3-676d6c935a3a"

EXPECTED = {
    "logging-tampering": {"trailpipe.cloudtrail.logging_stopped", STOP_LOGGING_THEN_DESTROY},
    "root-login-no-mfa": {"trailpipe.console.login_without_mfa", "trailpipe.root.activity"},
    "access-denied-burst": {"trailpipe.access.denied_burst",
                            "trailpipe.account.password_policy_discovery"},
    "iam-privesc": {ADMIN_BACKDOOR, "trailpipe.iam.access_key_for_other_user",
                    "trailpipe.iam.admin_policy_attached", "trailpipe.iam.changed",
                    "trailpipe.iam.credentials_changed", "trailpipe.iam.login_profile_other_user",
                    "trailpipe.iam.passrole_compute", "trailpipe.iam.policy_modified",
                    "trailpipe.iam.user_created"},
    "public-bucket-policy": {"trailpipe.resource.made_public",
                             "trailpipe.s3.bucket_acl_or_policy_changed"},
    "kms-key-deletion": {"trailpipe.kms.key_disabled_or_deleted"},
    "sg-open-world": {"trailpipe.ec2.security_group_open_world",
                      "trailpipe.ec2.network_config_changed"},
    "console-brute-force": {BRUTE_FORCE_THEN_SUCCESS, "trailpipe.console.login_failure_burst",
                            "trailpipe.console.login_without_mfa"},
}
"""Every alert (rule or correlation id) a scenario's events take part in."""


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    rules = load_ruleset(AlerterConfig())
    assert rules.problems == []
    return rules


def openings(rules: RuleSet, records: Iterable[dict[str, Any]]) -> list[AlertDraft]:
    """The alerts the alerter would publish, in order (correlations chained as it does)."""
    stage = Stage({i: r.meta for i, r in rules.rules.items()}, rules.correlations,
                  grace_ms=900_000, max_keys=1_000_000, sample_size=100)
    out = []
    for record in records:
        queue = rules.hits(record)
        while queue:
            for draft in stage.observe(queue.pop(0)):
                queue.extend(rules.chained(draft))
                if draft.update == 0 and rules.alerts_alone(draft.rule_id):
                    out.append(draft)
    return out


def test_each_scenario_raises_exactly_its_alerts(rules: RuleSet) -> None:
    assert set(EXPECTED) == set(SCENARIOS)
    gen = Generator(11, 4, 3, start_ms=START_MS, scenarios=list(SCENARIOS),
                    scenario_every=2_000)
    records = list(gen.records(6_000))
    scenario = {r["eventID"]: scenario_of(r) for r in records}
    raised: dict[str, set[str]] = {name: set() for name in SCENARIOS}
    for alert in openings(rules, records):
        for name in {scenario.get(e) for e in alert.sample_event_ids} - {None}:
            raised[name].add(alert.rule_id)  # type: ignore[index]
    assert raised == EXPECTED


def test_a_long_steady_run_raises_no_high_or_critical_alert(rules: RuleSet) -> None:
    records = Generator(5, 5, 3, start_ms=START_MS).records(300_000)
    loud = [(a.rule_id, a.title) for a in openings(rules, records)
            if a.severity in ("high", "critical")]
    assert loud == []
