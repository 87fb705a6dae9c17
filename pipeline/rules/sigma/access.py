"""Reading a Sigma field path out of a CloudTrail record (a JSON ``dict``).

A path such as ``userIdentity.sessionContext.attributes.mfaAuthenticated`` is split on dots
once, when the rule is compiled; the getter then walks the record with exact (case-sensitive)
keys. The getter returns the *candidate values*: every non-null value the path reaches, with
lists flattened (an element at any level is a candidate), so "the field matches" means "one
candidate matches" and "the field is null or missing" means "there is no candidate".

Members that some sources send as JSON text (``requestParameters`` and friends, and any string
a path has to walk into) are parsed on access; parses are cached by text, so a record tested
by several rules is parsed once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

JSON_TEXT_MEMBERS = frozenset({
    "requestParameters", "responseElements", "additionalEventData", "serviceEventDetails",
    "edgeDeviceDetails", "insightDetails", "eventContext",
})
"""Top-level members that hold a JSON value, possibly written as JSON text."""

Getter = Callable[[Mapping[str, Any]], list[Any]]

_EMPTY: list[Any] = []
_CACHE_ENTRIES = 256
_parsed: dict[str, Any] = {}


def parse_json_text(text: str, any_value: bool = False) -> Any:
    """``text`` parsed when it is a JSON object or array (with ``any_value``: any JSON value,
    so a member written as the text ``null`` reads as null), else ``text`` unchanged."""
    if not any_value and text[:1] not in ("{", "["):
        return text
    value = _parsed.get(text, _parsed)
    if value is not _parsed:
        return value
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if len(_parsed) >= _CACHE_ENTRIES:
        _parsed.clear()
    _parsed[text] = value
    return value


def compact_json(value: Any) -> str:
    """The compact JSON text of an object (what ``requestParameters|contains`` searches).
    Non-ASCII characters stay as they are so a pattern can find them."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _flatten(values: list[Any], out: list[Any]) -> None:
    for value in values:
        if isinstance(value, list):
            _flatten(value, out)
        elif value is not None:
            out.append(value)


def _walk(node: Any, rest: tuple[str, ...], depth: int, out: list[Any]) -> None:
    if node is None:
        return
    if depth == len(rest):
        if isinstance(node, list):
            _flatten(node, out)
        else:
            out.append(node)
        return
    if isinstance(node, str):
        node = parse_json_text(node)
    if isinstance(node, dict):
        _walk(node.get(rest[depth]), rest, depth + 1, out)
    elif isinstance(node, list):
        for element in node:
            _walk(element, rest, depth, out)


def compile_path(path: str) -> Getter:
    """A getter for ``path``: the record's candidate values there (see the module doc)."""
    first, *more = path.split(".")
    rest = tuple(more)
    json_member = first in JSON_TEXT_MEMBERS

    def get_top(event: Mapping[str, Any]) -> list[Any]:
        value = event.get(first)
        if value is None:
            return _EMPTY
        if json_member and isinstance(value, str):
            value = parse_json_text(value, any_value=True)
            if value is None:
                return _EMPTY
        if isinstance(value, list):
            out: list[Any] = []
            _flatten(value, out)
            return out
        return [value]

    def get_nested(event: Mapping[str, Any]) -> list[Any]:
        node = event.get(first)
        for segment in rest:  # the usual case: objects all the way down
            if node.__class__ is dict:
                node = node.get(segment)
            elif node is None:
                return _EMPTY
            else:
                out: list[Any] = []
                _walk(event.get(first), rest, 0, out)
                return out
        if node is None:
            return _EMPTY
        if isinstance(node, list):
            out = []
            _flatten(node, out)
            return out
        return [node]

    return get_nested if rest else get_top


def scalar_text(value: Any) -> str | None:
    """How a scalar reads as text when compared with a Sigma string: strings as they are,
    JSON booleans as ``true``/``false`` (what CloudTrail writes as text elsewhere), numbers
    in their JSON spelling; ``None`` for objects and arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return compact_json(value)
    return None


def leaf_texts(value: Any) -> Iterator[str]:
    """Every scalar inside an object or array, as text (depth first)."""
    if isinstance(value, dict):
        for member in value.values():
            yield from leaf_texts(member)
    elif isinstance(value, list):
        for element in value:
            yield from leaf_texts(element)
    elif value is not None:
        text = scalar_text(value)
        if text is not None:
            yield text


def texts(value: Any) -> Iterator[str]:
    """The texts a string pattern is tested against for one candidate value: a scalar's
    text; for an object, its compact JSON text and then every leaf inside it."""
    text = scalar_text(value)
    if text is not None:
        yield text
        return
    yield compact_json(value)
    yield from leaf_texts(value)
