"""One Sigma value (after pySigma applied the modifiers) compiled into a test of a field's
candidate values (see :mod:`.access`): it holds when one candidate matches.

Semantics, decided once here:

- strings compare case-insensitively with full Unicode case folding (``str.casefold`` on both
  sides, so ``?`` matches one character of the folded text); ``|cased`` compares exactly.
  ``*``/``?`` and their escapes come from pySigma's parsed string parts, never from raw text;
- a candidate that is a JSON boolean reads as ``true``/``false`` and a number in its JSON
  spelling, so ``'false'`` matches JSON ``false`` (as the SQLite backend's tables store them);
  an object is tested through its compact JSON text and every leaf inside it;
- a Sigma number matches a numeric candidate or a string that parses to the same number; a
  Sigma boolean matches a JSON boolean, the text ``true``/``false`` or the integer 1/0 (the
  backend's ``(f='true' OR f=1)``); ``gt``/``gte``/``lt``/``lte`` need a numeric candidate;
- ``null`` holds when there is no candidate (missing or null); ``exists`` when there is one;
- ``re`` searches (unanchored) each text with Python's ``re`` (pySigma validated the pattern
  with RE2 already), case-sensitively unless ``|i``; ``m`` and ``s`` are honoured;
- ``cidr`` holds for a candidate that parses as an IP address inside the network;
- ``fieldref`` compares with the other field's candidates, case-insensitively;
- values pySigma expands (``base64``, ``base64offset``, ``wide``, ``utf16*``, ``windash``)
  arrive as ordinary strings or alternatives and need nothing more. Timestamp parts
  (``minute`` ... ``year``) and unexpanded ``%placeholders%`` are refused (RuleError).
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from pipeline.rules.model import RuleError
from pipeline.rules.sigma.access import Getter, texts

ValueTest = Callable[[list[Any], Mapping[str, Any]], bool]
TextTest = Callable[[str], bool]

_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}
_REGEX_META = frozenset(".^$*+?{}[]\\|()")
_COMPARE = {
    CompareOperators.LT: operator.lt, CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt, CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


def plain_folded(value: SigmaType) -> str | None:
    """The casefolded literal of a case-insensitive string without wildcards, else None."""
    if isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString):
        parts = value.s
        if not parts:
            return ""
        if len(parts) == 1 and isinstance(parts[0], str):
            return parts[0].casefold()
    return None


def _string_test(value: SigmaString) -> TextTest:
    cased = isinstance(value, SigmaCasedString)
    fold: Callable[[str], str] = (lambda s: s) if cased else str.casefold
    parts: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise RuleError(f"placeholder %{part.name}% is not expanded (it needs a pipeline)")
        parts.append(fold(part) if isinstance(part, str) else part)
    star = SpecialChars.WILDCARD_MULTI
    inner = parts[1:-1]
    if not any(isinstance(p, SpecialChars) for p in parts):
        literal = "".join(p for p in parts if isinstance(p, str))
        return lambda s: fold(s) == literal
    if parts == [star]:
        return lambda s: True
    if len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(inner[0], str):
        needle = inner[0]
        return lambda s: needle in fold(s)
    if len(parts) == 2 and parts[1] is star and isinstance(parts[0], str):
        prefix = parts[0]
        return lambda s: fold(s).startswith(prefix)
    if len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
        suffix = parts[1]
        return lambda s: fold(s).endswith(suffix)
    pattern = re.compile("".join(
        ".*" if p is star else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(str(p))
        for p in parts), re.DOTALL)
    return lambda s: pattern.fullmatch(fold(s)) is not None


def _regex_test(regexp: str, flags: int) -> TextTest:
    """``re.search``; a pattern that is a literal between ``^``/``.*``/``.+`` and ``.*``/``.+``/
    ``$`` first checks that the literal occurs (cheap, and it spares the backtracking search
    of a leading ``.+`` on most texts)."""
    try:
        pattern = re.compile(regexp, flags)
    except re.error as error:  # RE2 syntax Python's re lacks, e.g. \pL
        raise RuleError(f"regular expression {regexp!r} is not supported: {error}") from None
    core = regexp.removeprefix("^")
    for wildcard in (".*", ".+"):
        core = core.removeprefix(wildcard)
    core = core.removesuffix("$")
    for wildcard in (".*", ".+"):
        core = core.removesuffix(wildcard)
    if flags & re.IGNORECASE or not core or any(c in _REGEX_META for c in core):
        return lambda s: pattern.search(s) is not None
    return lambda s: core in s and pattern.search(s) is not None


def any_text(test: TextTest) -> ValueTest:
    """A value test that holds when ``test`` holds for one text of one candidate."""
    def run(candidates: list[Any], event: Mapping[str, Any]) -> bool:
        for candidate in candidates:
            if type(candidate) is str:
                if test(candidate):
                    return True
            elif any(test(text) for text in texts(candidate)):
                return True
        return False
    return run


def folded_in(literals: frozenset[str]) -> ValueTest:
    """Case-insensitive equality with any of ``literals`` (casefolded), one set lookup."""
    def run(candidates: list[Any], event: Mapping[str, Any]) -> bool:
        for candidate in candidates:
            if type(candidate) is str:
                if candidate.casefold() in literals:
                    return True
            elif any(text.casefold() in literals for text in texts(candidate)):
                return True
        return False
    return run


def _number(candidate: Any) -> float | None:
    if isinstance(candidate, bool):
        return None
    if isinstance(candidate, int | float):
        return candidate
    if isinstance(candidate, str):
        try:
            return float(candidate)
        except ValueError:
            return None
    return None


def _any_candidate(test: Callable[[Any], bool]) -> ValueTest:
    return lambda candidates, event: any(test(c) for c in candidates)


def _bool_test(want: bool) -> Callable[[Any], bool]:
    word = "true" if want else "false"

    def test(candidate: Any) -> bool:
        if isinstance(candidate, bool):
            return candidate is want
        if isinstance(candidate, int):
            return candidate == int(want)
        return isinstance(candidate, str) and candidate.casefold() == word
    return test


def _cidr_test(value: SigmaCIDRExpression) -> TextTest:
    network = value.network

    def test(s: str) -> bool:
        try:
            return ipaddress.ip_address(s.strip()) in network
        except ValueError:
            return False
    return test


def _compare_test(value: SigmaCompareExpression) -> ValueTest:
    compare, bound = _COMPARE[value.op], value.number.number

    def test(candidate: Any) -> bool:
        number = _number(candidate)
        return number is not None and bool(compare(number, bound))
    return _any_candidate(test)


def _fieldref_test(value: SigmaFieldReference, other: Getter) -> ValueTest:
    if value.starts_with and value.ends_with:
        relate: Callable[[str, str], bool] = operator.contains
    elif value.starts_with:
        relate = str.startswith
    elif value.ends_with:
        relate = str.endswith
    else:
        relate = operator.eq

    def run(candidates: list[Any], event: Mapping[str, Any]) -> bool:
        theirs = [t.casefold() for c in other(event) for t in texts(c)]
        return any(relate(mine.casefold(), t)
                   for c in candidates for mine in texts(c) for t in theirs)
    return run


def compile_value(value: SigmaType, getter_for: Callable[[str], Getter]) -> ValueTest:
    """The test for one value; ``getter_for`` gives the getter of a field a value refers to.
    Raises RuleError for a value the matcher does not support."""
    if isinstance(value, SigmaNull):
        return lambda candidates, event: not candidates
    if isinstance(value, SigmaExists):
        want = value.exists
        return lambda candidates, event: bool(candidates) is want
    if isinstance(value, SigmaString):
        literal = plain_folded(value)
        if literal is not None:
            return folded_in(frozenset({literal}))
        return any_text(_string_test(value))
    if isinstance(value, SigmaRegularExpression):
        if value.contains_placeholder():
            raise RuleError("a %placeholder% in a regular expression is not expanded")
        flags = 0
        for flag in value.flags:
            flags |= _REGEX_FLAGS[flag]
        return any_text(_regex_test(str(value.regexp), flags))
    if isinstance(value, SigmaBool):
        return _any_candidate(_bool_test(value.boolean))
    if isinstance(value, SigmaTimestampPart):
        raise RuleError("timestamp-part modifiers (minute, hour, ...) are not supported")
    if isinstance(value, SigmaNumber):
        number = value.number
        return _any_candidate(lambda c: _number(c) == number)
    if isinstance(value, SigmaCIDRExpression):
        return any_text(_cidr_test(value))
    if isinstance(value, SigmaCompareExpression):
        return _compare_test(value)
    if isinstance(value, SigmaFieldReference):
        return _fieldref_test(value, getter_for(value.field))
    if isinstance(value, SigmaExpansion):
        tests = [compile_value(v, getter_for) for v in value.values]
        return lambda candidates, event: any(t(candidates, event) for t in tests)
    raise RuleError(f"value type {type(value).__name__} is not supported")
