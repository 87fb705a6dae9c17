"""Running native rules' own tests (the ``tests:`` of each ``<name>.yml``).

A test passes when ``matches`` gives ``expected`` and, for a match, ``describe`` works too
(an alert could not be made otherwise). A rule that raises fails that test with the error;
it never stops the other tests. Output formatting is the caller's (``trailpipe rules test``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.rules.native.load import NativeRule


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test's outcome. ``got`` is ``None`` when the rule raised (``error`` says what)."""

    __test__ = False  # not a pytest class

    rule_id: str
    test_name: str
    passed: bool
    expected: bool
    got: bool | None
    error: str | None = None
    path: str = ""


def run_rule_tests(rule: NativeRule) -> list[TestResult]:
    """Every test of ``rule``, in file order."""
    results: list[TestResult] = []
    for test in rule.spec.tests:
        got: bool | None = None
        error: str | None = None
        try:
            got = rule.matches(test.log)
            if got:
                rule.describe(test.log)
        except Exception as exc:  # a raising rule fails its test, nothing more
            error = f"{type(exc).__name__}: {exc}"
        results.append(TestResult(rule_id=rule.meta.id, test_name=test.name,
                                  passed=error is None and got == test.expected,
                                  expected=test.expected, got=got if error is None else None,
                                  error=error, path=str(rule.path)))
    return results


def run_tests(rules: Iterable[NativeRule]) -> list[TestResult]:
    """Every test of every rule in ``rules``, rule by rule."""
    return [result for rule in rules for result in run_rule_tests(rule)]
