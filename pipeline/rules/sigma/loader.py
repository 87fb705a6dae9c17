"""Loading Sigma rule files: parse with pySigma, compile with our matcher, resolve correlations.

:func:`load_sigma` never raises for a bad rule: every file or rule that cannot be used is left
out and named in ``SigmaLoad.problems`` (file and why), so one broken rule never hides the
others and nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from pipeline.rules.model import CorrelationSpec, Detail, RuleError, RuleMeta
from pipeline.rules.sigma.compile import Compiler, Predicate, any_of, derive_index
from pipeline.rules.sigma.correlations import RawCorrelation, resolve_correlations, split_condition
from pipeline.rules.sigma.meta import rule_meta

_CONTEXT_FIELDS = ("eventName", "eventSource", "awsRegion", "sourceIPAddress")


@dataclass(frozen=True, slots=True, eq=False)
class CompiledSigmaRule:
    """One Sigma detection rule, compiled (implements :class:`pipeline.rules.model.Rule`).
    ``fields`` are the field paths it reads; ``conditions`` are pySigma's parsed condition
    trees (ORed), kept for ``rules lint``; ``name`` is the Sigma ``name`` if any."""

    meta: RuleMeta
    matches: Predicate
    """``matches(event)``: the compiled condition itself (no wrapper call on the hot path)."""
    fields: tuple[str, ...]
    conditions: tuple[Any, ...]
    name: str | None = None

    def describe(self, event: Mapping[str, Any]) -> Detail:
        identity = event.get("userIdentity")
        principal = None
        if isinstance(identity, Mapping):
            principal = identity.get("arn") or identity.get("principalId")
        context = {k: str(event[k]) for k in _CONTEXT_FIELDS if event.get(k) is not None}
        return Detail(
            title=self.meta.title,
            dedup_key=f"{event.get('recipientAccountId') or ''}|{principal or 'unknown'}",
            severity=self.meta.severity,
            context=context,
        )


@dataclass(frozen=True, slots=True)
class SigmaLoad:
    """What :func:`load_sigma` found: usable rules and correlations, and every problem."""

    rules: list[CompiledSigmaRule]
    correlations: list[CorrelationSpec]
    problems: list[str]


def _rule_files(root: Path) -> list[Path]:
    if root.is_dir():
        return sorted({*root.rglob("*.yml"), *root.rglob("*.yaml")})
    return [root]


def _message(error: Exception) -> str:
    return str(error.args[0]) if error.args else type(error).__name__


def compile_rule(rule: SigmaRule, source: str) -> CompiledSigmaRule:
    """Compile one parsed rule; raises RuleError (or a SigmaError from condition parsing)."""
    if "timeframe" in rule.detection.detections:
        raise RuleError("'timeframe' in a detection is old syntax; use a correlation rule")
    compiler = Compiler()
    conditions = [c.parsed for c in rule.detection.parsed_condition]
    if any(c is None for c in conditions):
        raise RuleError("a condition selects nothing")
    predicate = any_of([compiler.condition(c) for c in conditions])
    return CompiledSigmaRule(
        meta=rule_meta(rule, source, derive_index(conditions)), matches=predicate,
        fields=compiler.fields, conditions=tuple(conditions), name=rule.name,
    )


def _parse_file(file: Path, problems: list[str]) -> SigmaCollection | None:
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        problems.append(f"{file}: cannot read: {error}")
        return None
    if not all(isinstance(d, dict) for d in docs):
        problems.append(f"{file}: a YAML document is not a mapping")
        return None
    for doc in docs:
        split_condition(doc)
    try:
        return SigmaCollection.from_dicts(
            docs, collect_errors=True, source=SigmaRuleLocation(file), collect_filters=True,
            resolve_references=False)
    except SigmaError as error:
        problems.append(f"{file}: {_message(error)}")
        return None


def _load_file(file: Path, source: str, problems: list[str],
               rules: list[CompiledSigmaRule], raw: list[RawCorrelation]) -> None:
    collection = _parse_file(file, problems)
    if collection is None:
        return
    if collection.filters:
        problems.append(f"{file}: Sigma filter documents are not supported")
    for rule in collection.rules:
        where = f"{file}: {rule.title or '(untitled)'}"
        if rule.errors:
            problems.extend(f"{where}: {_message(e)}" for e in rule.errors)
        elif rule.id is None:
            problems.append(f"{where}: the rule has no id")
        elif isinstance(rule, SigmaCorrelationRule):
            raw.append(RawCorrelation(rule, source, where))
        else:
            try:
                rules.append(compile_rule(rule, source))
            except (RuleError, SigmaError) as error:
                problems.append(f"{where}: {_message(error)}")


def load_sigma(paths: Sequence[Path]) -> SigmaLoad:
    """Load every ``*.yml``/``*.yaml`` under ``paths`` (files or directories, recursively).
    Correlations may reference rules (by ``name`` or ``id``) from any of the paths."""
    problems: list[str] = []
    rules: list[CompiledSigmaRule] = []
    raw: list[RawCorrelation] = []
    for root in paths:
        if not root.exists():
            problems.append(f"{root}: no such file or directory")
            continue
        for file in _rule_files(root):
            source = file.relative_to(root).as_posix() if root.is_dir() else file.name
            _load_file(file, source, problems, rules, raw)
    seen: set[str] = set()
    unique: list[CompiledSigmaRule] = []
    for rule in rules:
        if rule.meta.id in seen:
            problems.append(f"{rule.meta.source}: duplicate rule id {rule.meta.id}")
        else:
            seen.add(rule.meta.id)
            unique.append(rule)
    correlations = resolve_correlations(raw, unique, problems)
    return SigmaLoad(rules=unique, correlations=correlations, problems=problems)
