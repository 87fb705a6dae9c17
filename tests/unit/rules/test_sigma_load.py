"""Loading Sigma files (problems instead of crashes), the event index, lint, and the corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sigma.rule import SigmaRule

from pipeline.rules.sigma import lint_sigma, load_sigma
from pipeline.rules.sigma.loader import CompiledSigmaRule, compile_rule

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus"
SIGMA = CORPUS / "sigma"

RULE = """\
title: {title}
id: {id}
logsource: {{product: aws, service: cloudtrail}}
detection:
    sel:
        {field}: {value}
    condition: sel
level: {level}
tags: [attack.defense-impairment, attack.t1562.008]
"""


def write(path: Path, title: str = "t", id: str = "9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f00",
          field: str = "eventName", value: str = "StopLogging", level: str = "low") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RULE.format(title=title, id=id, field=field, value=value, level=level))
    return path


def rule(detection: dict[str, Any]) -> CompiledSigmaRule:
    return compile_rule(SigmaRule.from_dict({
        "title": "t", "id": "9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f01",
        "logsource": {"product": "aws"}, "detection": detection}), "t.yml")


def corpus_records() -> list[dict[str, Any]]:
    return [json.loads(line)
            for path in sorted((CORPUS / "cloudtrail").glob("*/records.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


# --- loading -----------------------------------------------------------------------------------

def test_loads_yml_and_yaml_recursively_with_meta(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", level="informational")
    write(tmp_path / "sub" / "b.yaml", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f02",
          level="critical")
    (tmp_path / "notes.txt").write_text("not a rule")
    load = load_sigma([tmp_path])
    assert load.problems == []
    by_source = {r.meta.source: r.meta for r in load.rules}
    assert set(by_source) == {"sigma:a.yml", "sigma:sub/b.yaml"}
    assert by_source["sigma:a.yml"].severity == "info"
    assert by_source["sigma:sub/b.yaml"].severity == "critical"
    meta = by_source["sigma:a.yml"]
    assert meta.tags == ("attack.defense-impairment", "attack.t1562.008")
    assert (meta.threshold, meta.dedup_period_ms) == (1, 3_600_000)
    single = load_sigma([tmp_path / "sub" / "b.yaml"])
    assert [r.meta.source for r in single.rules] == ["sigma:b.yaml"]


@pytest.mark.parametrize(("text", "why"), [
    ("title: [unclosed", "cannot read"),
    (RULE.format(title="t", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f03",
                 field="eventName|frobnicate", value="x", level="low"), "frobnicate"),
    (RULE.format(title="t", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f03",
                 field="eventTime|hour", value="3", level="low"), "timestamp"),
    (RULE.replace("id: {id}\n", "").format(title="t", field="eventName", value="x",
                                            level="low"), "no id"),
    (RULE.replace("condition: sel", "condition: sel | count() > 5").format(
        title="t", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f03", field="eventName", value="x",
        level="low"), "pipe syntax"),
])
def test_a_bad_rule_is_a_problem_naming_the_file(tmp_path: Path, text: str, why: str) -> None:
    write(tmp_path / "good.yml")
    (tmp_path / "bad.yml").write_text(text)
    load = load_sigma([tmp_path])
    assert [r.meta.source for r in load.rules] == ["sigma:good.yml"]
    assert len(load.problems) == 1
    assert str(tmp_path / "bad.yml") in load.problems[0]
    assert why in load.problems[0]


def test_duplicate_ids_and_missing_paths_are_problems(tmp_path: Path) -> None:
    write(tmp_path / "a.yml")
    write(tmp_path / "b.yml")
    load = load_sigma([tmp_path, tmp_path / "nowhere"])
    assert len(load.rules) == 1
    assert any("duplicate rule id" in p for p in load.problems)
    assert any("nowhere" in p and "no such" in p for p in load.problems)


def test_every_sigmahq_cloudtrail_rule_loads() -> None:
    load = load_sigma([SIGMA / "aws_cloudtrail"])
    assert load.problems == []
    assert len(load.rules) == 57
    assert len({r.meta.id for r in load.rules}) == 57


@pytest.mark.parametrize(("directory", "count", "why"), [
    ("aws_cloudtrail_placeholder", 1, "placeholder"),
    ("aws_cloudtrail_unsupported", 8, "correlation"),
])
def test_placeholder_and_old_syntax_rules_are_clear_problems(
        directory: str, count: int, why: str) -> None:
    load = load_sigma([SIGMA / directory])
    assert load.rules == []
    assert len(load.problems) == count
    assert all(why in p for p in load.problems), load.problems


# --- index ---------------------------------------------------------------------------------------

def test_index_from_the_condition() -> None:
    names = rule({"a": {"eventName": ["A", "b"]}, "f": {"errorCode": "x"},
                  "condition": "a and not f"})
    assert names.meta.index == {"eventName": frozenset({"a", "b"})}
    both = rule({"a": {"eventName": "A"}, "b": {"eventName": ["A", "B"]},
                 "condition": "a and b"})
    assert both.meta.index == {"eventName": frozenset({"a"})}
    source = rule({"a": {"eventName": "A"}, "b": {"eventSource": "s", "userAgent": "u"},
                   "condition": "a or b"})
    assert source.meta.index is None
    by_source = rule({"a": {"eventSource": "S", "eventName": "A"},
                      "b": {"eventSource": "s", "userAgent": "u"}, "condition": "a or b"})
    assert by_source.meta.index == {"eventSource": frozenset({"s"})}
    wildcard = rule({"a": {"eventName|startswith": "Delete"}, "condition": "a"})
    assert wildcard.meta.index is None
    negated = rule({"a": {"eventName": "A"}, "condition": "not a"})
    assert negated.meta.index is None


def at_path(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def test_index_is_sound_over_the_corpus() -> None:
    load = load_sigma([SIGMA / "aws_cloudtrail"])
    records = corpus_records()
    indexed = 0
    for r in load.rules:
        unindexed = {i for i, e in enumerate(records) if r.matches(e)}
        if r.meta.index is None:
            continue
        indexed += 1
        (field, allowed), = r.meta.index.items()
        candidates = [i for i, e in enumerate(records)
                      if isinstance(v := at_path(e, field), str) and v.casefold() in allowed]
        assert {i for i in candidates if r.matches(records[i])} == unindexed, r.meta.title
    assert indexed >= 50


# --- lint ----------------------------------------------------------------------------------------

def test_lint_flags_unknown_case_mismatched_and_unreachable_fields(tmp_path: Path) -> None:
    write(tmp_path / "status.yml", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f10", field="status")
    write(tmp_path / "case.yml", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f11", field="eventname")
    write(tmp_path / "scalar.yml", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f12",
          field="eventName.first")
    write(tmp_path / "open.yml", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f13",
          field="requestParameters.anything.below")
    write(tmp_path / "nested.yml", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f14",
          field="tlsDetails.tlsversion")
    write(tmp_path / "ours.yml", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f15",
          field="ingest.source")
    problems = lint_sigma(load_sigma([tmp_path]))
    text = "\n".join(problems)
    assert len(problems) == 5, text
    assert "status is not a CloudTrail field" in text
    assert "'eventname' differs only by case from CloudTrail's 'eventName'" in text
    assert "walks into eventName, a scalar" in text
    assert "'tlsversion' differs only by case from CloudTrail's 'tlsVersion'" in text
    assert "ingest.source is not a CloudTrail field" in text


def test_lint_flags_a_contradictory_condition_and_includes_load_problems(
        tmp_path: Path) -> None:
    (tmp_path / "never.yml").write_text(RULE.replace(
        "condition: sel", "other:\n        eventName: B\n    condition: sel and other").format(
        title="never", id="9d1f2a61-4c4b-4f7e-8a51-0b6c3d2e1f20", field="eventName",
        value="A", level="low"))
    (tmp_path / "broken.yml").write_text("title: [")
    problems = lint_sigma(load_sigma([tmp_path]))
    assert len(problems) == 2
    assert "broken.yml" in problems[0]
    assert "never: can never match" in problems[1]


def test_lint_of_the_corpus_names_only_real_field_problems() -> None:
    problems = lint_sigma(load_sigma([SIGMA / "aws_cloudtrail"]))
    # SigmaHQ's SAML-provider rule filters on a `status` field CloudTrail does not have.
    assert len(problems) == 1 and "status is not a CloudTrail field" in problems[0]
