"""Sigma v2.1 correlation rules, as pySigma parsed them, resolved into :class:`CorrelationSpec`.

References (``rules`` and alias keys) name a rule by ``name`` or ``id``; both resolve to the
referenced rule's id, and a correlation may reference another correlation (its id is kept; the
engine feeds a fired correlation as a match of the outer one). A condition may hold several of
``gt gte lt lte eq neq`` (a range): pySigma accepts one, so :func:`split_condition` hands it
the first and keeps the whole dict aside. Anything unresolved or unsupported becomes a problem
and the correlation (and every correlation referencing it) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast, get_args

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule

from pipeline.rules.model import CorrelationKind, CorrelationSpec, RuleError
from pipeline.rules.sigma.meta import rule_meta

OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
_FULL_CONDITION = "x-trailpipe-condition"


@dataclass(frozen=True, slots=True)
class RawCorrelation:
    """A parsed correlation rule, where it came from (``source`` for the meta, ``where`` for
    problems)."""

    rule: SigmaCorrelationRule
    source: str
    where: str


def split_condition(doc: dict[str, Any]) -> None:
    """Before pySigma parses ``doc``: a correlation condition with several operators keeps
    only the first for pySigma; the whole dict is stashed in a custom attribute."""
    correlation = doc.get("correlation")
    if not isinstance(correlation, dict):
        return
    condition = correlation.get("condition")
    if not isinstance(condition, dict):
        return
    ops = [k for k in condition if k in OPERATORS]
    if len(ops) > 1:
        single = {k: v for k, v in condition.items() if k not in OPERATORS or k == ops[0]}
        doc["correlation"] = {**correlation, "condition": single}
        doc[_FULL_CONDITION] = condition


def _condition(rule: SigmaCorrelationRule) -> dict[str, int]:
    full = rule.custom_attributes.get(_FULL_CONDITION)
    if full is None:
        cond = cast(SigmaCorrelationCondition, rule.condition)
        full = {cond.op.name.lower(): cond.count}
    result: dict[str, int] = {}
    for op, count in full.items():
        if op not in OPERATORS:
            continue
        if isinstance(count, bool) or not isinstance(count, int | float) or count != int(count):
            raise RuleError(f"condition {op}: {count!r} is not a whole number")
        result[op] = int(count)
    return result


def _value_field(rule: SigmaCorrelationRule, kind: str) -> str | None:
    if kind != "value_count":
        return None
    fieldref = cast(SigmaCorrelationCondition, rule.condition).fieldref
    if not isinstance(fieldref, str):
        raise RuleError("value_count needs exactly one condition field")
    return fieldref


def _spec(raw: RawCorrelation, refs: Mapping[str, str]) -> CorrelationSpec:
    rule = raw.rule
    kind = rule.type.name.lower()
    if kind not in get_args(CorrelationKind):
        raise RuleError(f"correlation type {kind} is not supported")
    if not isinstance(rule.condition, SigmaCorrelationCondition):
        raise RuleError("extended (boolean) correlation conditions are not supported")

    def resolve(reference: str) -> str:
        if reference not in refs:
            raise RuleError(f"references {reference!r}, which is not a loaded rule")
        return refs[reference]

    ids = tuple(resolve(ref.reference) for ref in rule.rules or ())
    group_by = tuple(rule.group_by or ())
    value_field = _value_field(rule, kind)
    names = group_by + ((value_field,) if value_field else ())
    fields = {rule_id: {name: name for name in names} for rule_id in ids}
    for alias in rule.aliases:
        for ref, field in alias.mapping.items():
            rule_id = resolve(ref.reference)
            if rule_id not in fields:
                raise RuleError(f"alias {alias.alias} names {ref.reference!r}, "
                                "which the correlation does not reference")
            fields[rule_id][alias.alias] = field
    return CorrelationSpec(
        meta=rule_meta(rule, raw.source, None), kind=cast(CorrelationKind, kind), rules=ids,
        group_by=group_by, fields=fields, timespan_ms=rule.timespan.seconds * 1000,
        condition=_condition(rule), value_field=value_field, generate=rule.generate,
    )


def _drop_broken(specs: list[CorrelationSpec], rule_ids: set[str],
                 problems: list[str]) -> list[CorrelationSpec]:
    """Leave out correlations that reference a correlation that did not load, or that
    reference themselves through a chain, until what is left is closed and acyclic."""
    by_id = {s.meta.id: s for s in specs}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for ref in by_id[start].rules if start in by_id else ():
            if ref == target or (ref not in seen and reaches(ref, target, seen | {ref})):
                return True
        return False

    for spec in specs:
        if reaches(spec.meta.id, spec.meta.id, set()):
            problems.append(f"{spec.meta.source}: correlation {spec.meta.id} references itself")
            del by_id[spec.meta.id]
    changed = True
    while changed:
        changed = False
        for spec in list(by_id.values()):
            missing = [r for r in spec.rules if r not in rule_ids and r not in by_id]
            if missing:
                problems.append(f"{spec.meta.source}: references correlation {missing[0]}, "
                                "which did not load")
                del by_id[spec.meta.id]
                changed = True
    return [s for s in specs if s.meta.id in by_id]


def resolve_correlations(raw: list[RawCorrelation], rules: list[Any],
                         problems: list[str]) -> list[CorrelationSpec]:
    """Specs for ``raw``, referencing the compiled ``rules`` (anything with ``meta.id`` and
    ``name``) and each other; problems are appended, broken correlations left out."""
    refs: dict[str, str] = {}
    for rule in rules:
        refs[rule.meta.id] = rule.meta.id
        if rule.name:
            refs[rule.name] = rule.meta.id
    for item in raw:
        refs[str(item.rule.id)] = str(item.rule.id)
        if item.rule.name:
            refs[item.rule.name] = str(item.rule.id)
    specs: list[CorrelationSpec] = []
    seen = {rule.meta.id for rule in rules}
    for item in raw:
        if str(item.rule.id) in seen:
            problems.append(f"{item.where}: duplicate rule id {item.rule.id}")
            continue
        seen.add(str(item.rule.id))
        try:
            specs.append(_spec(item, refs))
        except RuleError as error:
            problems.append(f"{item.where}: {error}")
    return _drop_broken(specs, {rule.meta.id for rule in rules}, problems)
