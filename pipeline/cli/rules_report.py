"""What ``trailpipe rules list|lint|test`` report about a :class:`Selection` of rules: rows,
findings and test outcomes as data (the commands print them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.cli.rules_load import Selection
from pipeline.rules.model import ANY_VALUE, CorrelationSpec, Rule, RuleMeta
from pipeline.rules.native.load import NativeRule
from pipeline.rules.native.testing import TestResult, run_tests
from pipeline.rules.ruleset import RuleSet
from pipeline.rules.sigma.lint import lint_sigma
from pipeline.rules.sigma.loader import SigmaLoad

Level = Literal["error", "warning"]
PIPED_WIDTH = 240


def _kind(meta: RuleMeta) -> str:
    return meta.source.split(":", 1)[0]


def _index_text(meta: RuleMeta) -> str:
    if not meta.index:
        return "every event"
    field, values = next(iter(meta.index.items()))
    if ANY_VALUE in values:
        return f"{field}: any value"
    return f"{field}: {len(values)} value{'' if len(values) == 1 else 's'}"


def _rule_row(rule: Rule, ruleset: RuleSet) -> dict[str, Any]:
    meta = rule.meta
    index = ({name: sorted(values) for name, values in meta.index.items()}
             if meta.index else None)
    return {"id": meta.id, "kind": _kind(meta), "severity": meta.severity, "title": meta.title,
            "source": meta.source, "index": index, "index_text": _index_text(meta),
            "tags": list(meta.tags), "threshold": meta.threshold,
            "dedup_period_minutes": meta.dedup_period_ms // 60_000,
            "alerts_alone": ruleset.alerts_alone(meta.id)}


def _correlation_row(spec: CorrelationSpec, ruleset: RuleSet) -> dict[str, Any]:
    meta = spec.meta
    return {"id": meta.id, "kind": "correlation", "severity": meta.severity,
            "title": meta.title, "source": meta.source, "index": None,
            "index_text": "its rules' matches", "tags": list(meta.tags), "type": spec.kind,
            "rules": list(spec.rules), "group_by": list(spec.group_by),
            "timespan_s": spec.timespan_ms // 1000, "condition": dict(spec.condition),
            "alerts_alone": ruleset.alerts_alone(meta.id)}


def list_rows(ruleset: RuleSet) -> list[dict[str, Any]]:
    """One row per rule, then per correlation, each sorted by source then id."""
    rules = sorted(ruleset.rules.values(), key=lambda r: (r.meta.source, r.meta.id))
    specs = sorted(ruleset.correlations.values(), key=lambda c: (c.meta.source, c.meta.id))
    return ([_rule_row(r, ruleset) for r in rules]
            + [_correlation_row(c, ruleset) for c in specs])


def print_table(rows: list[dict[str, Any]]) -> None:
    """The rows as a table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "kind", "severity", "title", "source", "index")
    for row in rows:
        table.add_row(row["id"], row["kind"], row["severity"], row["title"], row["source"],
                      row["index_text"])
    console = Console()
    if not console.is_terminal:  # piped: whole rows rather than the 80-column default
        console = Console(width=PIPED_WIDTH)
    console.print(table)


def _where(rule: Rule) -> str:
    """A native rule's metadata file; a Sigma rule's source (see :func:`located`)."""
    return str(rule.path.with_suffix(".yml")) if isinstance(rule, NativeRule) else rule.meta.source


def located(problem: str, sigma_files: dict[str, Path]) -> str:
    """A problem that names a Sigma rule by source (``sigma:<relative path>: ...``) with the
    rule's file instead."""
    source, sep, rest = problem.partition(": ")
    file = sigma_files.get(source)
    return f"{file}{sep}{rest}" if file is not None and sep else problem


def lint_findings(selection: Selection, disabled: Iterable[str]) -> list[tuple[Level, str]]:
    """Errors (rules that do not load or cannot work as written), then warnings."""
    files = selection.sigma_files
    errors = [*lint_sigma(selection.sigma), *selection.native.problems]
    loaded = {*selection.sigma.problems, *selection.native.problems}
    errors += [p for p in selection.ruleset.problems if p not in loaded]  # duplicate ids
    ruleset = selection.ruleset
    warnings = [f"{_where(ruleset.rules[rid])}: {ruleset.meta(rid).title} ({rid}) is not "
                "indexed by eventName or eventSource: every event is tested against it"
                for rid in ruleset.unindexed]
    warnings += [f"{rule.path.with_suffix('.yml')}: native rule {rule.meta.id} has no tests"
                 for rule in (*selection.native.rules, *selection.native.disabled)
                 if not rule.spec.tests]
    known = {*ruleset.rules, *ruleset.correlations}
    warnings += [f"[alerter] disabled: {rid!r} names no loaded rule"
                 for rid in disabled if rid not in known]
    return ([("error", located(p, files)) for p in errors]
            + [("warning", located(p, files)) for p in warnings])


@dataclass(frozen=True, slots=True)
class Outcome:
    """One test: ``name`` as pytest would show it, PASSED/FAILED, or ERROR (a rule file that
    did not load); ``reason`` says why it did not pass."""

    name: str
    status: Literal["PASSED", "FAILED", "ERROR"]
    reason: str = ""


def _native_outcome(result: TestResult) -> Outcome:
    name = f"{Path(result.path).with_suffix('.yml')}::{result.test_name}"
    if result.passed:
        return Outcome(name, "PASSED")
    verdict = {True: "a match", False: "no match"}
    reason = (result.error if result.error is not None
              else f"expected {verdict[result.expected]}, got {verdict[bool(result.got)]}")
    return Outcome(name, "FAILED", reason)


def _lint_outcome(meta: RuleMeta, problems: list[str], files: dict[str, Path]) -> Outcome:
    where = f"{meta.source}: {meta.title}: "
    name = f"{files.get(meta.source, meta.source)}::{meta.title}::loads and lints clean"
    if not problems:
        return Outcome(name, "PASSED")
    return Outcome(name, "FAILED", "; ".join(p.removeprefix(where) for p in problems))


def test_outcomes(selection: Selection) -> list[Outcome]:
    """Native rules' own tests (disabled rules too), a load-and-lint test per Sigma rule and
    correlation (Sigma has no test format), and an ERROR per rule file that did not load."""
    files = selection.sigma_files
    native = (*selection.native.rules, *selection.native.disabled)
    out = [_native_outcome(result) for result in run_tests(native)]
    for rule in selection.sigma.rules:
        problems = lint_sigma(SigmaLoad(rules=[rule], correlations=[], problems=[]))
        out.append(_lint_outcome(rule.meta, problems, files))
    for spec in selection.sigma.correlations:
        problems = lint_sigma(SigmaLoad(rules=[], correlations=[spec], problems=[]))
        out.append(_lint_outcome(spec.meta, problems, files))
    loaded = {*selection.sigma.problems, *selection.native.problems}
    extra = [p for p in selection.ruleset.problems if p not in loaded]
    for problem in [*selection.sigma.problems, *selection.native.problems, *extra]:
        where, _, reason = located(problem, files).partition(": ")
        out.append(Outcome(where, "ERROR", reason))
    return out
