"""A Sigma rule's parsed condition tree (pySigma's, after it resolved ``1 of sel*``, ``all of
them``, value lists and modifiers) compiled once into nested closures, and the event index
derived from the same tree.

The alternatives an OR compares on one field (``eventName: [A, B, C]``) share one field read
and, when they are plain strings, one casefold and one set lookup; ``|all`` values on one field
share one read too. A field-less value (keyword search) is tested against the whole record:
its compact JSON text and every leaf.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import SigmaExpansion, SigmaString, SigmaType, SpecialChars

from pipeline.rules.model import RuleError
from pipeline.rules.sigma.access import JSON_TEXT_MEMBERS, Getter, compile_path
from pipeline.rules.sigma.values import ValueTest, compile_value, folded_in, plain_folded

Predicate = Callable[[Mapping[str, Any]], bool]
INDEX_FIELDS = ("eventName", "eventSource", "userIdentity.type", "eventType", "errorCode",
                "userAgent")
"""Fields a rule may be indexed by, most selective first (plain columns in the events table)."""


def all_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda event: first(event) and second(event)

    def run(event: Mapping[str, Any]) -> bool:
        return all(p(event) for p in preds)
    return run


def any_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda event: first(event) or second(event)

    def run(event: Mapping[str, Any]) -> bool:
        return any(p(event) for p in preds)
    return run


class Compiler:
    """Compiles the condition trees of one rule; ``fields`` collects every field path read."""

    def __init__(self) -> None:
        self._getters: dict[str, Getter] = {}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self._getters)

    def getter(self, path: str) -> Getter:
        if path not in self._getters:
            self._getters[path] = compile_path(path)
        return self._getters[path]

    def condition(self, cond: Any) -> Predicate:
        """The predicate of one parsed condition; raises RuleError for what it cannot do."""
        if isinstance(cond, ConditionAND | ConditionOR):
            return self._boolean(cond.args, isinstance(cond, ConditionOR))
        if isinstance(cond, ConditionNOT):
            inner = self.condition(cond.args[0])
            return lambda event: not inner(event)
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            return self._field(cond.field, [cond.value], any_value=True)
        if isinstance(cond, ConditionValueExpression):
            test = compile_value(_anywhere(cond.value), self.getter)
            return lambda event: test([event], event)
        raise RuleError(f"condition element {type(cond).__name__} is not supported")

    def _boolean(self, args: Iterable[Any], is_or: bool) -> Predicate:
        preds: list[Predicate] = []
        by_field: dict[str, list[SigmaType]] = {}
        for arg in args:
            if isinstance(arg, ConditionFieldEqualsValueExpression):
                by_field.setdefault(arg.field, []).append(arg.value)
            else:
                preds.append(self.condition(arg))
        preds[:0] = [self._field(f, values, any_value=is_or) for f, values in by_field.items()]
        return any_of(preds) if is_or else all_of(preds)

    def _field(self, field: str, values: list[SigmaType], any_value: bool) -> Predicate:
        get = self.getter(field)
        tests: list[ValueTest] = []
        literals: set[str] = set()
        for value in values:
            literal = plain_folded(value) if any_value else None
            if literal is None:
                tests.append(compile_value(value, self.getter))
            else:
                literals.add(literal)
        if literals:
            tests.insert(0, folded_in(frozenset(literals)))
            if len(tests) == 1 and "." not in field and field not in JSON_TEXT_MEMBERS:
                return _top_level_in(field, frozenset(literals), tests[0], get)
        if len(tests) == 1:
            test = tests[0]
            return lambda event: test(get(event), event)
        combine = any if any_value else all

        def run(event: Mapping[str, Any]) -> bool:
            candidates = get(event)
            return combine(t(candidates, event) for t in tests)
        return run


def _top_level_in(field: str, literals: frozenset[str], test: ValueTest,
                  get: Getter) -> Predicate:
    """``field`` equals one of ``literals``: a plain string is one lookup (the hot path of
    ``eventName``/``eventSource``); anything else goes the general way."""
    def run(event: Mapping[str, Any]) -> bool:
        value = event.get(field)
        if value.__class__ is str:
            return value.casefold() in literals
        return test(get(event), event)
    return run


def _anywhere(value: SigmaType) -> SigmaType:
    """A keyword string matches anywhere in a text (as the backends' keyword search does)."""
    if isinstance(value, SigmaExpansion):
        return SigmaExpansion([_anywhere(v) for v in value.values])
    if not isinstance(value, SigmaString):
        return value
    star = SpecialChars.WILDCARD_MULTI
    parts = list(value.s)
    substring = copy.copy(value)
    substring.s = [*([] if parts[:1] == [star] else [star]), *parts,
                   *([] if parts[-1:] == [star] else [star])]
    return substring


def _literals(value: SigmaType) -> frozenset[str] | None:
    """The casefolded values a string without wildcards allows (cased ones too: their folded
    form is a superset), or None when the value is not such a literal."""
    if isinstance(value, SigmaExpansion):
        parts = [_literals(v) for v in value.values]
        return None if any(p is None for p in parts) else frozenset().union(*parts)  # type: ignore[arg-type]
    if isinstance(value, SigmaString) and all(isinstance(p, str) for p in value.s):
        return frozenset({"".join(value.s).casefold()})  # type: ignore[arg-type]
    return None


def required_values(cond: Any, field: str) -> frozenset[str] | None:
    """The casefolded values ``field`` must equal for ``cond`` to hold, or None when the
    condition does not bound it. Sound: every matching event's value is in the set."""
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        return _literals(cond.value) if cond.field == field else None
    if isinstance(cond, ConditionAND):
        bounds = [b for b in (required_values(a, field) for a in cond.args) if b is not None]
        return frozenset.intersection(*bounds) if bounds else None
    if isinstance(cond, ConditionOR):
        alternatives = [required_values(a, field) for a in cond.args]
        if any(b is None for b in alternatives):
            return None
        return frozenset().union(*alternatives)  # type: ignore[arg-type]
    return None


def derive_index(conditions: list[Any]) -> Mapping[str, frozenset[str]] | None:
    """``RuleMeta.index`` for a rule whose conditions (ORed) are ``conditions``: the first of
    ``eventName``/``eventSource`` that every condition bounds, else None."""
    for field in INDEX_FIELDS:
        bounds = [required_values(c, field) for c in conditions]
        if all(b is not None for b in bounds):
            return {field: frozenset().union(*bounds)}  # type: ignore[arg-type]
    return None

