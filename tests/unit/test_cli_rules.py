"""``trailpipe rules list|lint|test|eval`` through the CLI (CliRunner), with the SigmaHQ corpus
rules and records and small rules written into tmp_path. No services."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.rules import app
from pipeline.config import LogConfig
from pipeline.logs import configure_logging
from pipeline.rules.config import AlerterConfig
from pipeline.rules.ruleset import load_ruleset
from producers.files import read_file

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
SIGMAHQ = CORPUS / "sigma" / "aws_cloudtrail"
STRATUS = CORPUS / "cloudtrail" / "stratus-red-team" / "records.jsonl"
IMPORTANT_CHANGE = "4db60cc0-36fb-42b7-9b58-a5b53019fb74"  # "AWS CloudTrail Important Change"
STRATUS_STOP_LOGGING = "10163ed2-2253-469d-a5ee-cbc6651f8934"  # its StopLogging record

FAILED_LOGIN = """\
title: Failed console login
id: 0a0a0a0a-0000-4000-8000-000000000001
name: failed_login
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        eventName: ConsoleLogin
        responseElements.ConsoleLogin: Failure
    condition: selection
level: low
---
title: Failed console logins from one address
id: 0a0a0a0a-0000-4000-8000-000000000002
correlation:
    type: event_count
    rules: [failed_login]
    group-by: [sourceIPAddress]
    timespan: 10m
    condition: {gte: 3}
level: high
"""

NATIVE_PY = """\
def detect(event):
    return event.get("eventName") == "StopLogging"
"""

NATIVE_YML = """\
id: test.stop_logging
title: Trail stopped
severity: high
version: 1
event_names: [StopLogging]
tests:
  - name: stopped
    expected: true
    log: {eventName: StopLogging}
  - name: {name}
    expected: {expected}
    log: {{eventName: DeleteTrail}}
"""


@pytest.fixture
def cli(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TRAILPIPE_"):
            monkeypatch.delenv(name)

    def invoke(*args: str):
        try:
            return CliRunner().invoke(app, [str(a) for a in args])
        finally:
            configure_logging(LogConfig(format="console"))
    return invoke


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def login(event_id: str, minute: int, ip: str, outcome: str = "Failure") -> dict:
    return {"eventID": event_id, "eventName": "ConsoleLogin",
            "eventSource": "signin.amazonaws.com", "eventTime": f"2026-11-30T08:{minute:02d}:00Z",
            "sourceIPAddress": ip, "responseElements": {"ConsoleLogin": outcome}}


def native_rule(directory: Path, name: str = "stop_logging", *, passing: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(NATIVE_PY)
    test_name = "trail deleted is not a stop" if passing else "trail deleted (wrongly expected)"
    (directory / f"{name}.yml").write_text(NATIVE_YML.replace("{name}", test_name).replace(
        "{expected}", "false" if passing else "true").replace("{{", "{").replace("}}", "}"))
    return directory / f"{name}.yml"


def test_eval_over_stratus_records_prints_the_sigmahq_matches(cli):
    result = cli("eval", "--rules", SIGMAHQ, STRATUS)
    assert result.exit_code == 0, result.output
    out = lines(result.stdout)
    assert out and all(set(m) == {"rule_id", "title", "eventID", "severity"} for m in out)
    # The expectation, from the RuleSet directly: every record the rule matches, in order.
    ruleset = load_ruleset(AlerterConfig(default_pack=False), sigma_paths=[SIGMAHQ])
    rule = ruleset.rules[IMPORTANT_CHANGE]
    expected = [r.value["eventID"] for r in read_file(STRATUS)
                if r.value is not None and rule.matches(r.value)]
    got = [m["eventID"] for m in out if m["rule_id"] == IMPORTANT_CHANGE]
    assert got == expected and STRATUS_STOP_LOGGING in got
    stop = next(m for m in out if m["eventID"] == STRATUS_STOP_LOGGING
                and m["rule_id"] == IMPORTANT_CHANGE)
    assert stop == {"rule_id": IMPORTANT_CHANGE, "title": "AWS CloudTrail Important Change",
                    "eventID": STRATUS_STOP_LOGGING, "severity": "medium"}
    assert f"{sum(1 for _ in read_file(STRATUS))} records" in result.stderr


def test_eval_fires_a_correlation_with_its_event_ids_and_reports_bad_lines(cli, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "failed_login.yml").write_text(FAILED_LOGIN)
    records = [login("a1", 0, "192.0.2.1"), login("b1", 1, "198.51.100.7"),
               login("a2", 2, "192.0.2.1"), login("ok", 3, "192.0.2.1", "Success"),
               login("a3", 5, "192.0.2.1"), login("a4", 6, "192.0.2.1")]
    text = [json.dumps(r) for r in records]
    text.insert(2, "{not json")
    (tmp_path / "events.jsonl").write_text("\n".join(text) + "\n")
    result = cli("eval", "--rules", tmp_path / "rules", tmp_path / "events.jsonl")
    assert result.exit_code == 0, result.output
    # The base rule only feeds the correlation (no generate); a4 falls after the fired window
    # is consumed and starts a new one.
    assert lines(result.stdout) == [{
        "rule_id": "0a0a0a0a-0000-4000-8000-000000000002",
        "title": "Failed console logins from one address", "eventID": "a3",
        "severity": "high", "eventIDs": ["a1", "a2", "a3"]}]
    assert f"{tmp_path / 'events.jsonl'}:3: invalid JSON" in result.stderr
    assert "6 records from 1 files, 1 invalid" in result.stderr


def test_eval_reads_a_records_document_and_native_rules(cli, tmp_path):
    native_rule(tmp_path / "native", passing=True)
    doc = {"Records": [{"eventID": "s1", "eventName": "StopLogging",
                        "eventTime": "2026-11-30T08:00:00Z"},
                       {"eventID": "d1", "eventName": "DeleteTrail",
                        "eventTime": "2026-11-30T08:01:00Z"},
                       {"eventID": "x", "eventName": "StopLogging"}]}
    (tmp_path / "trail.json").write_text(json.dumps(doc))
    result = cli("eval", "--rules", tmp_path / "native", tmp_path / "trail.json")
    assert result.exit_code == 0, result.output
    assert lines(result.stdout) == [{"rule_id": "test.stop_logging", "title": "Trail stopped",
                                     "eventID": "s1", "severity": "high"}]
    assert f"{tmp_path / 'trail.json'}#Records[2]: eventTime is missing" in result.stderr


def test_eval_usage_errors_exit_2_listing_everything(cli, tmp_path):
    result = cli("eval", "--rules", SIGMAHQ, tmp_path / "nope1.json", tmp_path / "nope2.json")
    assert result.exit_code == 2
    assert "nope1.json: no such file" in result.stderr and "nope2.json" in result.stderr
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yml").write_text("title: a\nid: x\ndetection: {}\n")
    (rules / "b.yml").write_text(": not yaml: [")
    result = cli("eval", "--rules", rules, STRATUS)
    assert result.exit_code == 2
    assert "rules failed to load" in result.stderr
    assert str(rules / "a.yml") in result.stderr and str(rules / "b.yml") in result.stderr
    assert result.stdout == ""


def test_test_exits_1_on_a_failing_native_rule_test(cli, tmp_path):
    native_rule(tmp_path / "bad", passing=False)
    result = cli("test", tmp_path / "bad")
    assert result.exit_code == 1
    yml = tmp_path / "bad" / "stop_logging.yml"
    assert f"{yml}::stopped PASSED" in result.stdout
    assert f"{yml}::trail deleted (wrongly expected) FAILED" in result.stdout
    assert "expected a match, got no match" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("1 passed, 1 failed in ")
    native_rule(tmp_path / "good", passing=True)
    result = cli("test", tmp_path / "good")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("2 passed, 0 failed in ")


def test_test_lints_sigma_rules_and_errors_on_rules_that_do_not_load(cli, tmp_path):
    (tmp_path / "failed_login.yml").write_text(FAILED_LOGIN)
    result = cli("test", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("loads and lints clean PASSED") == 2  # the rule, the correlation
    (tmp_path / "broken.yml").write_text(FAILED_LOGIN.split("---")[0].replace(
        "eventName:", "eventName|nosuchmodifier:").replace("0001", "0009"))
    result = cli("test", tmp_path)
    assert result.exit_code == 1
    assert f"ERROR {tmp_path / 'broken.yml'} - " in result.stdout
    assert "Unknown modifier 'nosuchmodifier'" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("2 passed, 0 failed, 1 errors in ")


def test_lint_reports_bad_modifiers_unknown_fields_and_dangling_references(cli, tmp_path):
    (tmp_path / "modifier.yml").write_text(FAILED_LOGIN.split("---")[0].replace(
        "eventName:", "eventName|frobnicate:"))
    (tmp_path / "field.yml").write_text(FAILED_LOGIN.split("---")[0].replace(
        "eventName:", "eventname:").replace("0001", "0003"))
    (tmp_path / "dangling.yml").write_text(FAILED_LOGIN.split("---")[1].replace(
        "[failed_login]", "[no_such_rule]"))
    result = cli("lint", "--no-pack", "--rules", tmp_path)
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3
    assert any(f"{tmp_path / 'modifier.yml'}: " in e and "frobnicate" in e for e in errors)
    assert any(f"{tmp_path / 'field.yml'}: " in e and "differs only by case" in e
               for e in errors)
    assert any(f"{tmp_path / 'dangling.yml'}: " in e and "no_such_rule" in e for e in errors)
    # eventname is not eventName: the rule cannot be indexed either.
    assert any(line.startswith("warning: ") and "not indexed" in line
               for line in result.stdout.splitlines())


def test_lint_is_clean_for_the_default_pack_and_a_mixed_directory(cli, tmp_path):
    native_rule(tmp_path, passing=True)
    (tmp_path / "failed_login.yml").write_text(FAILED_LOGIN)
    result = cli("lint", "--rules", tmp_path)
    assert result.exit_code == 0, result.output
    assert "error:" not in result.stdout
    assert " 0 errors" in f" {result.stderr}"


def test_list_shows_every_rule_and_correlation(cli, tmp_path):
    native_rule(tmp_path / "native", passing=True)
    (tmp_path / "failed_login.yml").write_text(FAILED_LOGIN)
    result = cli("list", "--no-pack", "--json", "--rules", tmp_path / "native",
                 "--rules", tmp_path / "failed_login.yml")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in lines(result.stdout)}
    assert set(rows) == {"test.stop_logging", "0a0a0a0a-0000-4000-8000-000000000001",
                         "0a0a0a0a-0000-4000-8000-000000000002"}
    native = rows["test.stop_logging"]
    assert (native["kind"], native["severity"], native["index_text"]) == (
        "native", "high", "eventName: 1 value")
    sigma = rows["0a0a0a0a-0000-4000-8000-000000000001"]
    assert (sigma["kind"], sigma["index"], sigma["alerts_alone"]) == (
        "sigma", {"eventName": ["consolelogin"]}, False)
    assert rows["0a0a0a0a-0000-4000-8000-000000000002"]["kind"] == "correlation"
    table = cli("list", "--no-pack", "--rules", tmp_path / "native")
    assert table.exit_code == 0 and "test.stop_logging" in table.stdout
    assert "eventName: 1 value" in table.stdout


def test_list_includes_the_default_pack_unless_told_not_to(cli):
    with_pack = lines(cli("list", "--json").stdout)
    assert {row["kind"] for row in with_pack} == {"native", "sigma", "correlation"}
    without = cli("list", "--json", "--no-pack", "--rules", SIGMAHQ).stdout
    assert len(lines(without)) == len(list(SIGMAHQ.glob("*.yml")))


def test_the_trailpipe_command_mounts_rules_and_eval_reads_stdin(tmp_path, monkeypatch):
    from pipeline.cli.app import app as trailpipe

    for name in list(os.environ):
        if name.startswith("TRAILPIPE_"):
            monkeypatch.delenv(name)
    (tmp_path / "failed_login.yml").write_text(FAILED_LOGIN.split("---")[0])
    events = "".join(json.dumps(login(f"e{i}", i, "192.0.2.1")) + "\n" for i in range(2))
    try:
        result = CliRunner().invoke(trailpipe, ["rules", "eval", "--rules",
                                                str(tmp_path / "failed_login.yml")],
                                    input=events)
    finally:
        configure_logging(LogConfig(format="console"))
    assert result.exit_code == 0, result.output
    assert [m["eventID"] for m in lines(result.stdout)] == ["e0", "e1"]


def test_a_single_native_rule_file_is_loaded_without_its_neighbours(cli, tmp_path):
    native_rule(tmp_path, "first", passing=True)
    second = native_rule(tmp_path, "second", passing=True)
    second.write_text(second.read_text().replace("test.stop_logging", "test.second"))
    (tmp_path / "failed_login.yml").write_text(FAILED_LOGIN)
    for named in (tmp_path / "second.yml", tmp_path / "second.py"):
        result = cli("list", "--json", "--no-pack", "--rules", named)
        assert result.exit_code == 0, result.output
        assert [row["id"] for row in lines(result.stdout)] == ["test.second"]
        assert result.stderr == ""  # no problem reported about the neighbours
