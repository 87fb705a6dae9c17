"""Loading native rules: metadata validation, problems instead of crashes, the index, and
the defaults of describe()."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.rules.model import RuleError
from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.load import load_native, view_of

META = """\
id: test.{name}
title: Test rule {name}
severity: medium
version: 3
description: a rule for tests
tags: [attack.discovery]
event_names: [DeleteTrail, StopLogging]
"""

DETECT = """\
def detect(event):
    return event.deep_get("userIdentity", "type") == "Root"
"""

EVENT = {"eventName": "DeleteTrail", "eventSource": "cloudtrail.amazonaws.com",
         "awsRegion": "eu-west-1", "sourceIPAddress": "198.51.100.7",
         "recipientAccountId": "210987654321",
         "userIdentity": {"type": "Root", "arn": "arn:aws:iam::210987654321:root",
                          "principalId": "210987654321"}}


def write(root: Path, name: str, meta: str | None = None, code: str | None = DETECT) -> None:
    (root / f"{name}.yml").write_text(META.format(name=name) if meta is None else meta)
    if code is not None:
        (root / f"{name}.py").write_text(code)


def test_a_good_rule_loads_with_its_metadata(tmp_path: Path) -> None:
    write(tmp_path, "good")
    load = load_native([tmp_path])
    assert load.problems == ()
    (rule,) = load.rules
    meta = rule.meta
    assert (meta.id, meta.severity, meta.source) == ("test.good", "medium", "native:good@3")
    assert meta.tags == ("attack.discovery",)
    assert (meta.threshold, meta.dedup_period_ms) == (1, 3_600_000)
    assert meta.index == {"eventName": frozenset({"deletetrail", "stoplogging"})}


def test_matches_honours_the_index_and_any_key_case(tmp_path: Path) -> None:
    write(tmp_path, "good")
    (rule,) = load_native([tmp_path]).rules
    assert rule.matches(EVENT)
    assert rule.matches({"eventname": "StopLogging", "useridentity": {"type": "Root"}})
    assert not rule.matches({**EVENT, "eventName": "CreateTrail"})
    assert not rule.matches({**EVENT, "userIdentity": {"type": "IAMUser"}})


def test_describe_defaults(tmp_path: Path) -> None:
    write(tmp_path, "good")
    (rule,) = load_native([tmp_path]).rules
    detail = rule.describe(EVENT)
    assert detail.title == "Test rule good"
    assert detail.severity == "medium"
    assert detail.dedup_key == "210987654321|arn:aws:iam::210987654321:root"
    assert detail.context == {"eventName": "DeleteTrail", "eventSource": "cloudtrail.amazonaws.com",
                              "awsRegion": "eu-west-1", "sourceIPAddress": "198.51.100.7"}


def test_dedup_default_falls_back_to_principal_id(tmp_path: Path) -> None:
    write(tmp_path, "good")
    (rule,) = load_native([tmp_path]).rules
    event = {**EVENT, "userIdentity": {"type": "Root", "principalId": "AIDAX"}}
    assert rule.describe(event).dedup_key == "210987654321|AIDAX"


def test_describe_uses_the_optional_functions(tmp_path: Path) -> None:
    code = DETECT + (
        "def title(event):\n    return 'trail ' + event['eventName']\n"
        "def dedup(event):\n    return event['sourceIPAddress']\n"
        "def severity(event):\n    return 'CRITICAL'\n"
        "def alert_context(event):\n    return {'n': 3, 'none': None}\n")
    write(tmp_path, "custom", code=code)
    (rule,) = load_native([tmp_path]).rules
    detail = rule.describe(EVENT)
    assert (detail.title, detail.dedup_key, detail.severity) == (
        "trail DeleteTrail", "198.51.100.7", "critical")
    assert detail.context == {"n": "3", "none": ""}


def test_an_unknown_severity_from_the_rule_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "sev", code=DETECT + "def severity(event):\n    return 'urgent'\n")
    (rule,) = load_native([tmp_path]).rules
    with pytest.raises(RuleError, match="urgent"):
        rule.describe(EVENT)


def test_the_event_is_a_cloudtrail_view(tmp_path: Path) -> None:
    code = "def detect(event):\n    return event.deep_get('requestParameters', 'name') == 'x'\n"
    write(tmp_path, "json", code=code)
    (rule,) = load_native([tmp_path]).rules
    assert rule.matches({**EVENT, "requestParameters": '{"name": "x"}'})
    assert rule.matches(CloudTrailEvent({**EVENT, "requestParameters": {"name": "x"}}))


def test_every_problem_is_listed_and_good_rules_still_load(tmp_path: Path) -> None:
    write(tmp_path, "good")
    write(tmp_path, "badyaml", meta="id: [unclosed\n")
    write(tmp_path, "unknown", meta=META.format(name="unknown") + "colour: blue\n")
    write(tmp_path, "nosev", meta=META.format(name="nosev").replace("severity: medium\n", ""))
    write(tmp_path, "wrongsev", meta=META.format(name="wrongsev").replace("medium", "urgent"))
    write(tmp_path, "boom", code="raise RuntimeError('no import for you')\n")
    write(tmp_path, "nodetect", code="def title(event):\n    return 'x'\n")
    write(tmp_path, "nomodule", code=None)
    (tmp_path / "orphan.py").write_text(DETECT)
    (tmp_path / "_shared.py").write_text("X = 1\n")
    load = load_native([tmp_path])
    assert [r.meta.id for r in load.rules] == ["test.good"]
    text = "\n".join(load.problems)
    for needle in ("badyaml.yml: cannot read", "unknown.yml: colour: Extra inputs",
                   "nosev.yml: severity: Field required", "wrongsev.yml: severity",
                   "boom.py: import failed: RuntimeError: no import for you",
                   "nodetect.py: no detect(event)", "nomodule.yml: no module nomodule.py",
                   "orphan.py: no metadata file orphan.yml"):
        assert needle in text, needle
    assert len(load.problems) == 8
    assert "_shared" not in text


def test_duplicate_ids_are_a_problem(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a", "same")
    write(tmp_path / "b", "same")
    load = load_native([tmp_path])
    assert len(load.rules) == 1
    (problem,) = load.problems
    assert "duplicate rule id 'test.same'" in problem


def test_disabled_rules_are_kept_apart(tmp_path: Path) -> None:
    write(tmp_path, "off", meta=META.format(name="off") + "enabled: false\n")
    load = load_native([tmp_path])
    assert load.rules == ()
    assert [r.meta.id for r in load.disabled] == ["test.off"]


def test_a_missing_directory_is_a_problem(tmp_path: Path) -> None:
    load = load_native([tmp_path / "nope"])
    assert load.rules == ()
    assert load.problems == (f"{tmp_path / 'nope'}: not a directory",)


def test_without_event_names_the_rule_has_no_index(tmp_path: Path) -> None:
    meta = META.format(name="all").replace("event_names: [DeleteTrail, StopLogging]\n", "")
    write(tmp_path, "all", meta=meta + "threshold: 5\ndedup_period_minutes: 10\n")
    (rule,) = load_native([tmp_path]).rules
    assert rule.meta.index is None
    assert (rule.meta.threshold, rule.meta.dedup_period_ms) == (5, 600_000)
    assert rule.matches({**EVENT, "eventName": "Anything"})


def test_consecutive_rules_share_one_view_of_a_record() -> None:
    record = dict(EVENT)
    first = view_of(record)
    assert view_of(record) is first
    assert view_of(dict(EVENT)) is not first
    assert view_of(first) is first
