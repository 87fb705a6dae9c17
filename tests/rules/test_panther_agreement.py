"""The default pack against Panther's labelled tests.

Every pack rule names, in ``panther:``, the Panther rules whose intent it covers. For each of
those Panther rules we run our rule on every one of its test events and compare our verdict
with Panther's ``expected``. Panther tests judge one event at a time (thresholds apply
after), as our ``matches`` does, so the two are comparable.

Some Panther tests carry ``mocks``: stand-ins for lookups our rules do not have (an account
age table, a geo-IP service, a configured allow-list). Where such a lookup decides the
verdict, we disagree; each remaining disagreement is listed in ``EXPLAINED`` with why, and
the test fails on any disagreement not listed (a regression) or any listed one that went
away (so the list stays true).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.rules.native.load import NativeRule, load_pack

PANTHER = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "panther" / "rules"

MIN_COVERED = 40
MIN_AGREEMENT = 0.95

EXPLAINED: dict[tuple[str, str], str] = {
    ("AWS.Console.LoginWithoutMFA", "No MFA Login - New User"):
        "Panther mocks an account-age lookup that spares users created in the last days; "
        "we keep no such table, so a password-only sign-in alerts whatever the user's age.",
}
"""(Panther rule id, Panther test name) -> why our verdict differs."""


@dataclass(frozen=True, slots=True)
class Verdict:
    rule_id: str
    panther_id: str
    test_name: str
    expected: bool
    got: bool | str
    mocked: bool


def _panther_tests(panther_id: str) -> list[dict[str, Any]]:
    data = json.loads((PANTHER / f"{panther_id}.json").read_text(encoding="utf-8"))
    tests: list[dict[str, Any]] = data["tests"]
    return tests


def _verdict(rule: NativeRule, log: dict[str, Any]) -> bool | str:
    try:
        return rule.matches(log)
    except Exception as exc:  # a raising rule is a disagreement, shown with its error
        return f"raised {type(exc).__name__}: {exc}"


def verdicts() -> list[Verdict]:
    """Our verdict on every test of every Panther rule the pack claims to cover."""
    pack = load_pack()
    assert pack.problems == (), pack.problems
    found: list[Verdict] = []
    for rule in pack.rules + pack.disabled:
        for panther_id in rule.spec.panther:
            for test in _panther_tests(panther_id):
                found.append(Verdict(rule.meta.id, panther_id, test["name"],
                                     bool(test["expected"]), _verdict(rule, test["log"]),
                                     bool(test.get("mocks"))))
    return found


def test_pack_agrees_with_panther_labels() -> None:
    results = verdicts()
    covered = {v.panther_id for v in results}
    wrong = [v for v in results if v.got != v.expected]
    agreement = 1 - len(wrong) / len(results)
    print(f"\n{len(covered)} Panther rules covered, {len(results)} tests, "
          f"{len(results) - len(wrong)} agree ({agreement:.1%}); "
          f"{sum(v.mocked for v in results)} tests carry mocks")
    for v in wrong:
        print(f"  disagree: {v.rule_id} on {v.panther_id} / {v.test_name!r}: "
              f"expected {v.expected}, got {v.got}{' (mocked)' if v.mocked else ''}")
    assert len(covered) >= MIN_COVERED
    assert agreement >= MIN_AGREEMENT
    assert {(v.panther_id, v.test_name) for v in wrong} == set(EXPLAINED)


def test_every_claimed_panther_rule_exists_and_has_tests() -> None:
    for rule in load_pack().rules:
        for panther_id in rule.spec.panther:
            assert (PANTHER / f"{panther_id}.json").exists(), (rule.meta.id, panther_id)
            assert _panther_tests(panther_id), panther_id
