"""The pack's resource rules (S3, KMS, EC2, RDS, Lambda, SSM, Secrets Manager, VPC, WAF)
on generated traffic (each resource attack scenario raises exactly its alerts, once; the
other scenarios raise none of them), and the helpers they share."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from test_pack import alerts

from pipeline.rules.native.load import load_pack
from pipeline.rules.pack.native._resources import is_public_ip, listed, policy_is_public
from producers.generator.engine import Generator
from producers.generator.scenarios import SCENARIOS, scenario_of

_RESOURCE_FILES = re.compile(r"^(ec2|s3|kms|rds|lambda|ecr|ssm|secrets|vpc|waf|network|compute"
                             r"|ebs|sns|software)_")
RULES = tuple(r for r in load_pack().rules if _RESOURCE_FILES.match(r.path.name))

EXPECTED: dict[str, Counter[tuple[str, str]]] = {
    "public-bucket-policy": Counter({("trailpipe.resource.made_public", "high"): 1,
                                     ("trailpipe.s3.bucket_acl_or_policy_changed", "info"): 1}),
    "kms-key-deletion": Counter({("trailpipe.kms.key_disabled_or_deleted", "high"): 1}),
    "sg-open-world": Counter({("trailpipe.ec2.security_group_open_world", "high"): 1,
                              ("trailpipe.ec2.network_config_changed", "info"): 1}),
}
"""(rule id, severity) -> number of alerts each scenario raises from these rules; the
scenarios not listed raise none. Several steps of one scenario share a dedup key (the
bucket, the key, the group), so each rule alerts once."""


def test_the_resource_rules_are_loaded() -> None:
    ids = {r.meta.id for r in RULES}
    assert {rule_id for expected in EXPECTED.values() for rule_id, _ in expected} <= ids
    assert len(RULES) >= 40


def test_each_resource_scenario_raises_exactly_its_alerts_once() -> None:
    # One block: every scenario injected once among 2,000 records.
    gen = Generator(seed=11, start_ms=1_700_000_000_000, scenarios=SCENARIOS,
                    scenario_every=2_000)
    raised: dict[str | None, Counter[tuple[str, str]]] = {}
    for rule_id, severity, record in alerts(gen.records(2_000), RULES):
        raised.setdefault(scenario_of(record), Counter())[(rule_id, severity)] += 1
    for name in SCENARIOS:
        assert raised.get(name, Counter()) == EXPECTED.get(name, Counter()), name


@pytest.mark.parametrize(("policy", "public"), [
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}, True),
    ('{"Statement": {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "sqs:*"}}', True),
    ("%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%22*%22%7D%5D%7D",
     True),
    ({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}]}, False),
    ({"Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}}]}, False),
    ({"Statement": [{"Effect": "Allow", "Principal": "*",
                     "Condition": {"IpAddress": {"AWS:SourceIp": "198.51.100.0/24"}}}]}, False),
    ({"Statement": [{"Effect": "Allow", "Principal": "*",
                     "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}, True),
    ("not json", False),
    ("", False),
])
def test_policy_is_public(policy: object, public: bool) -> None:
    assert policy_is_public(policy) is public


@pytest.mark.parametrize(("address", "public"), [
    ("45.33.32.156", True), ("2600:1f18::1", True), ("10.0.1.50", False),
    ("192.0.2.10", False), ("ec2.amazonaws.com", False), ("AWS Internal", False), (None, False),
])
def test_is_public_ip(address: object, public: bool) -> None:
    assert is_public_ip(address) is public


def test_listed_unwraps_cloudtrail_item_lists() -> None:
    assert listed({"items": [1, 2]}) == [1, 2]
    assert listed({}) == [{}]
    assert listed({"items": None}) == []
    assert listed(None) == []
    assert listed("x") == ["x"]
