"""Sigma v2.1 correlation rules resolved into CorrelationSpec, and the default pack's ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.rules.model import CorrelationSpec
from pipeline.rules.sigma import lint_sigma, load_sigma

PACK = Path(__file__).resolve().parents[3] / "pipeline" / "rules" / "pack" / "sigma"

BASE = """\
title: failed login
id: 11111111-1111-4111-8111-111111111111
name: failed_login
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        eventName: ConsoleLogin
        responseElements.ConsoleLogin: Failure
    condition: sel
level: low
---
title: key created
id: 22222222-2222-4222-8222-222222222222
name: key_created
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        eventName: CreateAccessKey
    condition: sel
level: low
"""

FAILED, KEY = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def correlation(body: str, id: str = "33333333-3333-4333-8333-333333333333",
                name: str = "corr") -> str:
    return (f"title: correlation {name}\nid: {id}\nname: {name}\nlevel: high\n"
            f"tags: [attack.t1110]\ncorrelation:\n{textwrap.indent(body, '    ')}")


def load(tmp_path: Path, *correlations: str) -> tuple[list[CorrelationSpec], list[str]]:
    (tmp_path / "base.yml").write_text(BASE)
    (tmp_path / "corr.yml").write_text("\n---\n".join(correlations))
    result = load_sigma([tmp_path])
    return result.correlations, result.problems


def test_event_count_by_name_with_group_by(tmp_path: Path) -> None:
    specs, problems = load(tmp_path, correlation(
        "type: event_count\nrules: failed_login\ngroup-by: [sourceIPAddress]\n"
        "timespan: 15m\ncondition: {gte: 5}\n"))
    assert problems == []
    (spec,) = specs
    assert spec.kind == "event_count"
    assert spec.rules == (FAILED,)
    assert spec.group_by == ("sourceIPAddress",)
    assert spec.fields == {FAILED: {"sourceIPAddress": "sourceIPAddress"}}
    assert spec.timespan_ms == 15 * 60_000
    assert spec.condition == {"gte": 5}
    assert spec.generate is False and spec.value_field is None
    assert (spec.meta.id, spec.meta.severity, spec.meta.tags, spec.meta.source) == (
        "33333333-3333-4333-8333-333333333333", "high", ("attack.t1110",), "sigma:corr.yml")


def test_value_count_by_id_with_a_range_and_generate(tmp_path: Path) -> None:
    specs, problems = load(tmp_path, correlation(
        f"type: value_count\nrules: [{KEY}]\ngroup-by: [userIdentity.arn]\ntimespan: 1h\n"
        "condition: {gt: 2, lte: 10, field: requestParameters.userName}\ngenerate: true\n"))
    assert problems == []
    (spec,) = specs
    assert spec.kind == "value_count" and spec.rules == (KEY,)
    assert spec.condition == {"gt": 2, "lte": 10}
    assert spec.value_field == "requestParameters.userName"
    assert spec.fields[KEY] == {"userIdentity.arn": "userIdentity.arn",
                                "requestParameters.userName": "requestParameters.userName"}
    assert spec.timespan_ms == 3_600_000 and spec.generate is True


def test_temporal_with_aliases(tmp_path: Path) -> None:
    specs, problems = load(tmp_path, correlation(
        "type: temporal\nrules: [failed_login, key_created]\ngroup-by: [who]\ntimespan: 5m\n"
        "aliases:\n    who:\n        failed_login: userIdentity.arn\n"
        f"        {KEY}: requestParameters.userName\n"))
    assert problems == []
    (spec,) = specs
    assert spec.kind == "temporal" and spec.rules == (FAILED, KEY)
    assert spec.fields == {FAILED: {"who": "userIdentity.arn"},
                           KEY: {"who": "requestParameters.userName"}}
    assert spec.condition == {"gte": 2}  # a temporal rule needs all its rules by default


def test_a_correlation_may_reference_a_correlation(tmp_path: Path) -> None:
    inner = correlation("type: event_count\nrules: failed_login\ngroup-by: [sourceIPAddress]\n"
                        "timespan: 15m\ncondition: {gte: 5}\n", name="burst")
    outer = correlation("type: temporal_ordered\nrules: [burst, key_created]\n"
                        "group-by: [sourceIPAddress]\ntimespan: 15m\n",
                        id="44444444-4444-4444-8444-444444444444", name="outer")
    specs, problems = load(tmp_path, inner, outer)
    assert problems == []
    by_name = {s.meta.title: s for s in specs}
    assert by_name["correlation outer"].rules == ("33333333-3333-4333-8333-333333333333", KEY)
    assert by_name["correlation outer"].kind == "temporal_ordered"


@pytest.mark.parametrize(("body", "why"), [
    ("type: event_count\nrules: nobody\ntimespan: 5m\ncondition: {gte: 2}\n",
     "'nobody', which is not a loaded rule"),
    ("type: event_count\nrules: failed_login\ntimespan: 5 minutes\ncondition: {gte: 2}\n",
     "Timespan"),
    ("type: value_sum\nrules: failed_login\ntimespan: 5m\ncondition: {gte: 2, field: x}\n",
     "value_sum is not supported"),
    ("type: temporal\nrules: [failed_login, key_created]\ntimespan: 5m\n"
     "condition: failed_login and not key_created\n", "extended"),
    ("type: temporal\nrules: [failed_login]\ntimespan: 5m\naliases:\n    who:\n"
     "        key_created: userIdentity.arn\n", "does not reference"),
    ("type: event_count\nrules: failed_login\ntimespan: 5m\ncondition: {gte: 2.5}\n",
     "whole number"),
])
def test_bad_correlations_are_problems(tmp_path: Path, body: str, why: str) -> None:
    specs, problems = load(tmp_path, correlation(body))
    assert specs == []
    assert len(problems) == 1, problems
    assert why in problems[0] and "corr.yml" in problems[0]


def test_a_correlation_referencing_a_broken_one_is_left_out(tmp_path: Path) -> None:
    broken = correlation("type: event_count\nrules: nobody\ntimespan: 5m\n"
                         "condition: {gte: 2}\n", name="broken")
    outer = correlation("type: temporal\nrules: [broken, key_created]\ntimespan: 5m\n",
                        id="44444444-4444-4444-8444-444444444444", name="outer")
    cycle = correlation("type: event_count\nrules: cycle\ntimespan: 5m\n"
                        "condition: {gte: 2}\n",
                        id="55555555-5555-4555-8555-555555555555", name="cycle")
    specs, problems = load(tmp_path, broken, outer, cycle)
    assert specs == []
    assert len(problems) == 3
    assert any("references itself" in p for p in problems)
    assert any("did not load" in p for p in problems)


def test_the_default_pack_loads_lints_clean_and_chains() -> None:
    result = load_sigma([PACK])
    assert result.problems == [] and lint_sigma(result) == []
    names = {r.name: r.meta.id for r in result.rules}
    specs = {s.meta.id: s for s in result.correlations}
    assert len(specs) == 4
    assert all(s.meta.severity in ("high", "critical") for s in specs.values())
    assert all(r.meta.severity == "info" and r.meta.index is not None for r in result.rules)
    backdoor = specs["31a71406-3d92-40a8-86da-3167e05fb422"]
    assert backdoor.kind == "temporal_ordered" and backdoor.timespan_ms == 15 * 60_000
    assert backdoor.rules == (names["trailpipe_iam_user_created"],
                              names["trailpipe_iam_user_made_admin"],
                              names["trailpipe_iam_access_key_created"])
    assert backdoor.group_by == ("userIdentity.arn",)
    destruction = specs["047ced12-dbce-445e-9ea3-676d6c935a3a"]
    assert destruction.timespan_ms == 30 * 60_000
    assert destruction.rules == (names["trailpipe_trail_stopped"],
                                 names["trailpipe_destructive_call"])
    burst = specs["7697d7b4-4fbf-41dc-b3eb-75986fca2a6f"]
    assert burst.kind == "event_count" and burst.condition == {"gte": 5}
    assert burst.group_by == ("sourceIPAddress",)
    chained = specs["d5e9b20a-2d31-4527-8053-84acb9c0a833"]
    assert chained.kind == "temporal_ordered" and chained.group_by == ("sourceIPAddress",)
    assert chained.rules == (burst.meta.id, names["trailpipe_console_login_succeeded"])
    assert not any(s.generate for s in specs.values())


def test_the_pack_base_rules_match_what_they_say() -> None:
    rules = {r.name: r for r in load_sigma([PACK]).rules}
    admin = rules["trailpipe_iam_user_made_admin"]
    assert admin.matches({"eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy",
                          "requestParameters": {
                              "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}})
    assert not admin.matches({"eventSource": "iam.amazonaws.com",
                              "eventName": "AttachUserPolicy", "requestParameters": {
                                  "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}})
    inline = {"eventSource": "iam.amazonaws.com", "eventName": "PutUserPolicy",
              "requestParameters": {"policyDocument": '{"Statement":[{"Effect":"Allow",'
                                                      '"Action": "*","Resource":"*"}]}'}}
    assert admin.matches(inline)
    assert not admin.matches({**inline, "errorCode": "AccessDenied"})
    failed = rules["trailpipe_console_login_failed"]
    assert failed.matches({"eventName": "ConsoleLogin",
                           "responseElements": {"ConsoleLogin": "Failure"}})
    assert not failed.matches({"eventName": "ConsoleLogin",
                               "responseElements": {"ConsoleLogin": "Success"}})
    stopped = rules["trailpipe_trail_stopped"]
    assert stopped.matches({"eventSource": "cloudtrail.amazonaws.com",
                            "eventName": "StopLogging"})
    assert rules["trailpipe_destructive_call"].matches({"eventName": "ScheduleKeyDeletion"})
