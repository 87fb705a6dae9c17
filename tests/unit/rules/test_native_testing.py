"""Running native rules' own tests: pass, fail, and a rule that raises."""

from __future__ import annotations

from pathlib import Path

from pipeline.rules.native.load import load_native
from pipeline.rules.native.testing import TestResult, run_tests

META = """\
id: test.{name}
title: T
severity: low
version: 1
tests:
  - name: root
    expected: true
    log: {{eventName: X, userIdentity: {{type: Root}}}}
  - name: user
    expected: false
    log: {{eventName: X, userIdentity: {{type: IAMUser}}}}
"""


def rules(tmp_path: Path, **code: str) -> list[TestResult]:
    for name, body in code.items():
        (tmp_path / f"{name}.yml").write_text(META.format(name=name))
        (tmp_path / f"{name}.py").write_text(body)
    load = load_native([tmp_path])
    assert load.problems == ()
    return run_tests(load.rules)


def test_passing_and_failing_tests(tmp_path: Path) -> None:
    results = rules(
        tmp_path,
        right="def detect(e):\n    return e.deep_get('userIdentity', 'type') == 'Root'\n",
        wrong="def detect(e):\n    return True\n")
    by = {(r.rule_id, r.test_name): r for r in results}
    assert all(by[("test.right", n)].passed for n in ("root", "user"))
    assert by[("test.wrong", "root")].passed
    failed = by[("test.wrong", "user")]
    assert (failed.passed, failed.expected, failed.got, failed.error) == (False, False, True, None)
    assert failed.path.endswith("wrong.py")


def test_a_raising_rule_fails_its_tests_with_the_error(tmp_path: Path) -> None:
    results = rules(tmp_path, boom="def detect(e):\n    return e['missing']\n")
    assert [(r.passed, r.got) for r in results] == [(False, None), (False, None)]
    assert all(r.error == "KeyError: 'missing'" for r in results)


def test_describe_errors_fail_a_matching_test(tmp_path: Path) -> None:
    code = ("def detect(e):\n    return e.deep_get('userIdentity', 'type') == 'Root'\n"
            "def title(e):\n    raise ValueError('bad title')\n")
    results = rules(tmp_path, titled=code)
    root, user = results
    assert (root.passed, root.error) == (False, "ValueError: bad title")
    assert user.passed
