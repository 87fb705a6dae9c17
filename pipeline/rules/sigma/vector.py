"""A compiled Sigma rule evaluated column-wise over a decoded events table (pyarrow.compute).

:func:`vectorize` gives a :class:`VectorRule`, or None when the rule reads something column
operations cannot decide exactly (the caller keeps the per-row matcher for it). Contract: on
every row the verdict equals ``rule.matches(from_avro(row))``. Rows a column operation cannot
decide are reported *undecided*, to be re-checked per row. They are the rows where

- a case-insensitive test (string, boolean as text, regex) reads a non-ASCII value: on ASCII
  text ``ascii_lower`` equals ``str.casefold``, elsewhere not (the Kelvin sign folds to ``k``);
- ``unmodelled`` may hold a key of a path the rule reads (a value of an unexpected type, which
  ``from_avro`` puts back into the record while its typed column is null);
- a regex with ``$`` (without ``m``) meets text ending in a newline (Python's ``$`` matches
  before it, RE2's does not).

Vectorized: fields that are string or boolean columns reached through struct members (not the
JSON-text members, lists or maps); plain, ``cased`` and wildcard strings (so ``contains``,
``startswith``, ``endswith``); ``re`` in a pattern subset RE2 and Python read alike; booleans
(a boolean column reads ``true``/``false`` as text, as values.py has it); ``null``, ``exists``;
numbers against boolean columns (never equal); AND, OR, NOT. Not vectorized: keyword values,
``fieldref``, ``cidr``, numbers against strings. String tests run on each column's distinct
values (one dictionary encoding per column and table), not on every row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from pipeline.events.plan import Kind, ObjectPlan, compile_plan
from pipeline.events.schemas import default_registry
from pipeline.rules.sigma.columns import (
    Columns,
    Mask,
    Node,
    TextTest,
    ends_newline,
    in_unmodelled,
    non_ascii,
    nothing,
)
from pipeline.rules.sigma.loader import CompiledSigmaRule
from pipeline.rules.sigma.values import plain_folded

_PLAN = compile_plan(default_registry().get().raw)  # the plan from_avro joins records with
_SEGMENT = re.compile(r"[A-Za-z0-9_@-]+")
_STR, _BOOL, _ABSENT = Kind.STR.value, Kind.BOOL.value, "absent"
_REGEX_LITERALS = frozenset(" !\"#%&',-/:;<=>@_`~")
_REGEX_FLAGS = {SigmaRegularExpressionFlag.IGNORECASE: "i",
                SigmaRegularExpressionFlag.MULTILINE: "m", SigmaRegularExpressionFlag.DOTALL: "s"}


class Unsupported(Exception):
    """A rule part that no column operation decides exactly."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Per row, no nulls: ``matched`` (False where undecided) and ``undecided``."""

    matched: Mask
    undecided: Mask


@dataclass(frozen=True, slots=True)
class VectorRule:
    """A Sigma rule evaluated column-wise; see the module doc for the exactness contract."""

    rule: CompiledSigmaRule
    node: Node
    hazards: tuple[Node, ...]

    def evaluate(self, columns: Columns) -> Verdict:
        undecided = _any([h(columns) for h in self.hazards])
        return Verdict(pc.and_not(pc.fill_null(self.node(columns), False), undecided), undecided)

    def mask(self, table: pa.Table, recheck: Callable[[int], bool]) -> pa.Array:
        """The verdict per row; ``recheck(row)`` decides each undecided row (for instance
        ``rule.matches`` on that row's CloudTrail JSON)."""
        verdict = self.evaluate(Columns(table))
        matched, undecided = (m.combine_chunks() if isinstance(m, pa.ChunkedArray) else m
                              for m in (verdict.matched, verdict.undecided))
        rows = pc.indices_nonzero(undecided).to_pylist()
        rechecked = pa.array([bool(recheck(row)) for row in rows], pa.bool_())
        return pc.replace_with_mask(matched, undecided, rechecked) if rows else matched


def _any(masks: list[Mask], combine: Callable[[Mask, Mask], Mask] = pc.or_kleene) -> Mask:
    """``masks`` ORed (or ``combine``-d); Kleene logic, so null (no match) OR true is true."""
    out = masks[0]
    for mask in masks[1:]:
        out = combine(out, mask)
    return out


def _leaf_kind(path: str) -> str:
    """``_STR``, ``_BOOL``, or ``_ABSENT`` (no record has the path outside ``unmodelled``)."""
    plan: ObjectPlan | None = _PLAN
    segments = path.split(".")
    for depth, name in enumerate(segments):
        if not _SEGMENT.fullmatch(name):
            raise Unsupported(f"field name {name!r}")
        field = plan.by_name.get(name) if plan is not None else None
        if field is None:
            return _ABSENT
        last = depth == len(segments) - 1
        if last and field.kind in (Kind.STR, Kind.BOOL):
            return _STR if field.kind is Kind.STR else _BOOL
        if last or field.kind is not Kind.OBJECT:
            raise Unsupported(f"{path}: not a string or boolean column")
        plan = field.sub
    raise Unsupported(path)


def _re2_literal(text: str) -> str:
    """An RE2 pattern matching exactly ``text`` (every character but ASCII letters and digits
    written as ``\\x{hex}``, which RE2 reads as that code point)."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


def _unmodelled_pattern(paths: list[str]) -> str:
    """An RE2 search over ``unmodelled`` (compact JSON mirroring the record's nesting; keys of
    letters, digits, ``_@-`` are never escaped) that holds wherever it may give one of
    ``paths`` a value: a leaf key, or an inner key whose value is not an object.
    Conservative: it ignores at which depth a key is."""
    inner = sorted({s for p in paths for s in p.split(".")[:-1]})
    leaves = sorted({p.split(".")[-1] for p in paths})
    pattern = rf'"(?:{"|".join(map(_re2_literal, leaves))})"\s*:'
    if inner:
        pattern += rf'|"(?:{"|".join(map(_re2_literal, inner))})"\s*:\s*[^{{\s]'
    return pattern


def _check_regex(pattern: str) -> None:
    """Raise Unsupported unless ``pattern`` is in a subset Python's ``re`` and RE2 read alike
    on ASCII text: ASCII letters, digits and some punctuation, escaped punctuation, ``.``,
    ``^``, ``$``, ``|``, ``(...)``, ``(?:...)``, and ``*``, ``+``, ``?`` (also lazy) after an
    atom. No classes, braces, flags groups, lookarounds or ``\\w``-style escapes."""
    i, prev = 0, "start"  # prev: atom, quantifier, lazy or start (nothing to repeat)
    while i < len(pattern):
        c, step, kind = pattern[i], 1, "atom"
        if c == "\\":
            escaped = pattern[i + 1:i + 2]
            if not (escaped.isascii() and escaped.isprintable() and not escaped.isalnum()
                    and escaped != " "):
                raise Unsupported(f"regex escape in {pattern!r}")
            step = 2
        elif c in "*+?":
            if not (prev == "atom" or (c == "?" and prev == "quantifier")):
                raise Unsupported(f"regex repetition in {pattern!r}")
            kind = "quantifier" if prev == "atom" else "lazy"
        elif c in "(|^$":
            kind = "start"
            if pattern[i:i + 2] == "(?":
                if pattern[i + 2:i + 3] != ":":
                    raise Unsupported(f"regex group in {pattern!r}")
                step = 3
        elif not (c in ".)" or c in _REGEX_LITERALS or (c.isascii() and c.isalnum())):
            raise Unsupported(f"regex syntax {c!r} in {pattern!r}")
        i, prev = i + step, kind


def _string_test(parts: list[str | SpecialChars]) -> TextTest:
    """The test of texts against a Sigma string's parts (as ``values._string_test``)."""
    star = SpecialChars.WILDCARD_MULTI
    literal = parts[1] if len(parts) == 3 else parts[0] if len(parts) == 2 else None
    if all(isinstance(p, str) for p in parts):
        whole = "".join(str(p) for p in parts)
        return lambda v: pc.equal(v, whole)
    if parts == [star]:
        return lambda v: pc.is_valid(v)
    if isinstance(literal, str) and parts == [star, literal, star]:
        return lambda v: pc.match_substring(v, literal)
    if isinstance(literal, str) and parts == [literal, star]:
        return lambda v: pc.starts_with(v, literal)
    if isinstance(literal, str) and parts == [star, literal]:
        return lambda v: pc.ends_with(v, literal)
    body = "".join(".*" if p is star else "." if p is SpecialChars.WILDCARD_SINGLE
                   else _re2_literal(str(p)) for p in parts)
    return lambda v: pc.match_substring_regex(v, rf"(?s)\A(?:{body})\z")


class _Compiler:
    """Builds the Node of a rule's conditions; collects the paths read and the hazards."""

    def __init__(self) -> None:
        self.hazards: dict[tuple[str, str], Node] = {}
        self.paths: list[str] = []

    def condition(self, cond: Any) -> Node:
        if isinstance(cond, ConditionNOT):
            inner = self.condition(cond.args[0])
            return lambda columns: pc.invert(inner(columns))
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            return self.field(cond.field, cond.value)
        if not isinstance(cond, ConditionAND | ConditionOR):
            raise Unsupported(f"condition element {type(cond).__name__}")
        is_or = isinstance(cond, ConditionOR)
        parts, by_field = [], dict[str, list[SigmaType]]()
        for arg in cond.args:  # an OR's values on one field share one set lookup
            if is_or and isinstance(arg, ConditionFieldEqualsValueExpression):
                by_field.setdefault(arg.field, []).append(arg.value)
            else:
                parts.append(self.condition(arg))
        parts += [self.field(f, SigmaExpansion(v)) for f, v in by_field.items()]
        combine = pc.or_kleene if is_or else pc.and_kleene
        return lambda columns: _any([p(columns) for p in parts], combine)

    def field(self, path: str, value: SigmaType) -> Node:
        kind = _leaf_kind(path)
        if path not in self.paths:
            self.paths.append(path)
        node = self._value(path, kind, value)
        return lambda columns: pc.fill_null(node(columns), False)

    def _value(self, path: str, kind: str, value: SigmaType) -> Node:
        if isinstance(value, SigmaExpansion):
            return self._alternatives(path, kind, value.values)
        column = nothing if kind == _ABSENT else (lambda columns: columns.raw(path))
        if isinstance(value, SigmaNull) or (isinstance(value, SigmaExists) and not value.exists):
            return lambda columns: pc.is_null(column(columns))
        if isinstance(value, SigmaExists):
            return lambda columns: pc.is_valid(column(columns))
        if kind == _ABSENT:  # no candidate: every other value test fails
            return nothing
        if isinstance(value, SigmaString):
            return self._string(path, kind, value)
        if isinstance(value, SigmaRegularExpression):
            return self._regex(path, value)
        if isinstance(value, SigmaBool) and kind == _BOOL:
            return lambda columns: pc.equal(columns.raw(path), value.boolean)
        if isinstance(value, SigmaBool):
            return self._in(path, kind, {"true" if value.boolean else "false"})
        if isinstance(value, SigmaNumber | SigmaCompareExpression) and kind == _BOOL:
            return nothing  # a boolean is never a number
        raise Unsupported(f"{path}: value {type(value).__name__}")

    def _alternatives(self, path: str, kind: str, values: list[SigmaType]) -> Node:
        literals = {plain_folded(v) for v in values} - {None}
        parts = [self._value(path, kind, v) for v in values if plain_folded(v) is None]
        if literals:
            parts.append(self._in(path, kind, {str(s) for s in literals}))
        return lambda columns: _any([p(columns) for p in parts])

    def _in(self, path: str, kind: str, literals: set[str]) -> Node:
        if kind == _STR:
            self.hazards[("ascii", path)] = non_ascii(path)
        values = pa.array(sorted(literals), pa.string())
        return lambda columns: columns.per_value(path, True, lambda v: pc.is_in(v, values))

    def _string(self, path: str, kind: str, value: SigmaString) -> Node:
        cased = isinstance(value, SigmaCasedString)
        if not cased and kind == _STR:
            self.hazards[("ascii", path)] = non_ascii(path)
        parts: list[str | SpecialChars] = []
        for part in value.s:
            if not isinstance(part, str | SpecialChars):
                raise Unsupported(f"{path}: placeholder")
            parts.append(part if cased or not isinstance(part, str) else part.casefold())
        test = _string_test(parts)
        return lambda columns: columns.per_value(path, not cased, test)

    def _regex(self, path: str, value: SigmaRegularExpression) -> Node:
        regexp = str(value.regexp)
        _check_regex(regexp)
        flags = "".join(sorted(_REGEX_FLAGS[f] for f in value.flags))
        pattern = f"(?{flags}){regexp}" if flags else regexp
        try:
            pc.match_substring_regex(pa.array([""]), pattern)
        except pa.ArrowInvalid as error:
            raise Unsupported(f"RE2 rejects {pattern!r}") from error
        self.hazards[("ascii", path)] = non_ascii(path)
        if "$" in regexp and "m" not in flags:
            self.hazards[("newline", path)] = ends_newline(path)
        return lambda columns: columns.per_value(
            path, False, lambda v: pc.match_substring_regex(v, pattern))


def vectorize(rule: CompiledSigmaRule) -> VectorRule | None:
    """The column-wise evaluator of ``rule``, or None when part of it is not vectorizable."""
    compiler = _Compiler()
    try:
        parts = [compiler.condition(c) for c in rule.conditions]
    except Unsupported:
        return None
    hazards = [*compiler.hazards.values(), in_unmodelled(_unmodelled_pattern(compiler.paths))]
    return VectorRule(rule, lambda columns: _any([p(columns) for p in parts]), tuple(hazards))
