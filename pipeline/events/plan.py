"""Compile an ApiCallEvent schema into a mapping plan, and the walkers that apply it.

The schema file is the model. Each CloudTrail field is a nullable Avro field (null = key absent)
and its Avro type says which JSON values it can hold:

====================================  ========  =============================================
Avro type                             kind      JSON value it takes
====================================  ========  =============================================
``["null","string"]``                 STR       a string (without lone UTF-16 surrogates)
same, with ``"trailpipe.kind":"json"`` JSON      any JSON value, stored as JSON text
``["null","boolean"]``                BOOL      ``true`` / ``false`` (not ``"true"``)
``["null", record]``                  OBJECT    an object; its keys are mapped by these rules
``["null", {"array": record}]``       OBJECTS   an array of objects that all map completely
``["null", {"map": "string"}]``       STRMAP    an object whose values are all strings
====================================  ========  =============================================

A value that does not fit its field, and any key the schema does not name, goes to the
*residual*: an object mirroring the record's nesting that holds exactly what the typed fields
did not take. Fields marked ``"trailpipe.kind":"meta"`` are ours (ingest metadata, derived
event time, the residual itself) and never hold a CloudTrail key.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.events.errors import InvalidDatum, InvalidRecord


class Kind(enum.Enum):
    STR = "str"
    JSON = "json"
    BOOL = "bool"
    OBJECT = "object"
    OBJECTS = "objects"
    STRMAP = "strmap"


@dataclass(frozen=True, slots=True)
class FieldPlan:
    name: str
    kind: Kind
    sub: ObjectPlan | None = None


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    fields: tuple[FieldPlan, ...]
    by_name: Mapping[str, FieldPlan]


def compile_plan(record_schema: Mapping[str, Any]) -> ObjectPlan:
    """Plan for an Avro record schema (raw JSON form). Raises ValueError on a field type the
    mapping cannot carry losslessly, so a bad schema edit fails at import, not on data."""
    fields = []
    for f in record_schema["fields"]:
        if f.get("trailpipe.kind") == "meta":
            continue
        fields.append(_field_plan(f))
    return ObjectPlan(tuple(fields), {f.name: f for f in fields})


def _field_plan(field: Mapping[str, Any]) -> FieldPlan:
    name, typ = field["name"], field["type"]
    if not (isinstance(typ, list) and len(typ) == 2 and typ[0] == "null"):
        raise ValueError(f"field {name}: CloudTrail fields must be [\"null\", T] (null = absent)")
    inner = typ[1]
    if inner == "string":
        return FieldPlan(name, Kind.JSON if field.get("trailpipe.kind") == "json" else Kind.STR)
    if inner == "boolean":
        return FieldPlan(name, Kind.BOOL)
    if isinstance(inner, dict) and inner.get("type") == "record":
        return FieldPlan(name, Kind.OBJECT, compile_plan(inner))
    if isinstance(inner, dict) and inner.get("type") == "array":
        items = inner["items"]
        if isinstance(items, dict) and items.get("type") == "record":
            return FieldPlan(name, Kind.OBJECTS, compile_plan(items))
    if isinstance(inner, dict) and inner.get("type") == "map" and inner.get("values") == "string":
        return FieldPlan(name, Kind.STRMAP)
    raise ValueError(f"field {name}: unsupported type {inner!r}")


# Avro strings are UTF-8; a lone surrogate (legal in a JSON \uD800 escape) cannot be encoded.
_SURROGATE = re.compile("[\ud800-\udfff]")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_loads = json.JSONDecoder().decode


def avro_safe(text: str) -> bool:
    """True if ``text`` can be written as an Avro (UTF-8) string."""
    return text.isascii() or _SURROGATE.search(text) is None


def json_text(value: Any) -> str:
    """Compact JSON text that ``json.loads`` turns back into an equal value (big ints exact,
    floats by shortest repr). Escapes non-ASCII only when the text holds a lone surrogate.
    orjson writes it when it can (several times faster); the standard library when orjson
    refuses the value (big ints, lone surrogates, non-string keys, deep nesting) and when its
    text holds ``null``, which is also how orjson writes NaN and infinities (lossy)."""
    if value is None:
        return "null"
    try:
        fast = orjson.dumps(value)
    except orjson.JSONEncodeError:
        fast = b"null"
    if b"null" not in fast:
        return fast.decode()
    try:
        text = _dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRecord(f"not a JSON value: {exc}") from exc
    return text if avro_safe(text) else _dumps_ascii(value)


def parse_json_text(text: str, what: str) -> Any:
    """Inverse of :func:`json_text`; raises InvalidDatum naming ``what`` on bad text."""
    try:
        return _loads(text)
    except ValueError as exc:
        raise InvalidDatum(f"{what} is not JSON text: {exc}") from exc


def split(obj: dict[str, Any], plan: ObjectPlan) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a JSON object into (Avro datum part, residual). Never mutates ``obj``; the
    residual may share sub-values with ``obj`` (callers serialise it right away)."""
    # The producer's hot path: kinds are compared by identity against locals, the common
    # case (a well-formed string) first, and avro_safe is inlined.
    out: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    by_name = plan.by_name
    k_str, k_json, k_bool, k_object = Kind.STR, Kind.JSON, Kind.BOOL, Kind.OBJECT
    surrogate = _SURROGATE.search
    for key, value in obj.items():
        f = by_name.get(key)
        if f is None:
            rest[key] = value
            continue
        kind = f.kind
        if kind is k_str:
            if type(value) is str and (value.isascii() or surrogate(value) is None):
                out[key] = value
            else:
                rest[key] = value
        elif kind is k_json:
            out[key] = json_text(value)
        elif kind is k_bool:
            if type(value) is bool:
                out[key] = value
            else:
                rest[key] = value
        elif kind is k_object and type(value) is dict:
            assert f.sub is not None
            out[key], sub_rest = split(value, f.sub)
            if sub_rest:
                rest[key] = sub_rest
        else:
            whole = _convert_whole(f, value)
            if whole is None:
                rest[key] = value
            else:
                out[key] = whole
    return out, rest


def _convert_whole(f: FieldPlan, value: Any) -> Any:
    """All-or-nothing kinds: the converted value, or None if any part does not fit (then the
    whole value goes to the residual, so array elements never need residuals of their own)."""
    if f.kind is Kind.OBJECTS and type(value) is list:
        assert f.sub is not None
        items = []
        for element in value:
            if type(element) is not dict:
                return None
            converted, rest = split(element, f.sub)
            if rest:
                return None
            items.append(converted)
        return items
    if f.kind is Kind.STRMAP and type(value) is dict:
        for k, v in value.items():
            if type(v) is not str or not avro_safe(k) or not avro_safe(v):
                return None
        return dict(value)
    return None


def join(datum: Mapping[str, Any], plan: ObjectPlan) -> dict[str, Any]:
    """Inverse of the Avro part of :func:`split`: the JSON object the typed fields hold."""
    obj: dict[str, Any] = {}
    for f in plan.fields:
        value = datum.get(f.name)
        if value is None:
            continue
        kind = f.kind
        if kind is Kind.JSON:
            obj[f.name] = parse_json_text(value, f.name)
        elif kind is Kind.OBJECT:
            assert f.sub is not None
            obj[f.name] = join(value, f.sub)
        elif kind is Kind.OBJECTS:
            assert f.sub is not None
            obj[f.name] = [join(element, f.sub) for element in value]
        elif kind is Kind.STRMAP:
            obj[f.name] = dict(value)
        else:
            obj[f.name] = value
    return obj


def merge(obj: dict[str, Any], rest: Mapping[str, Any], path: str = "") -> None:
    """Put the residual back into ``obj`` (in place). A key is in both only when the typed part
    holds an object whose unfitting members are in the residual; anything else is a
    contradiction (InvalidDatum), since :func:`split` puts each key in exactly one place."""
    for key, value in rest.items():
        current = obj.get(key, _ABSENT)
        if current is _ABSENT:
            obj[key] = value
        elif type(current) is dict and type(value) is dict:
            merge(current, value, f"{path}{key}.")
        else:
            raise InvalidDatum(f"unmodelled.{path}{key} collides with a typed field")


_ABSENT = object()
