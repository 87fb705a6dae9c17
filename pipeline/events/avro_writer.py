"""A compiled Avro binary writer for the ApiCallEvent schemas (the producer's hot path).

fastavro's ``schemaless_writer`` resolves every ``["null", T]`` union by validating the value
against each branch, which re-walks nested records; on our schema that is most of the encode
time. :func:`compile_writer` turns a schema into closures that write each field directly and
check each value's type as they go (a string must be a ``str``, a boolean a ``bool``, ...), so
a datum that does not fit still fails, with TypeError or ValueError.

Only what ApiCallEvent uses is supported: null, boolean, int, long, string, enum, record, array,
map, and unions of ``null`` with one other type. Anything else raises :class:`Unsupported` at
compile time, and :mod:`pipeline.events.wire` then keeps using fastavro for that schema. The
output is byte-for-byte what fastavro writes (tested over the whole corpus).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Write = Callable[[Any, bytearray], None]
"""Appends the Avro binary encoding of a value to the buffer."""

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


class Unsupported(ValueError):
    """The schema uses a type this writer does not implement."""


def _zigzag_varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = []
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = tuple(_zigzag_varint(i) for i in range(4096))
"""Encodings of 0..4095: string lengths, counts and union indexes come from here."""


def write_long(n: int, out: bytearray) -> None:
    if type(n) is not int:
        raise TypeError(f"expected an int, got {type(n).__name__}")
    if 0 <= n < 4096:
        out += _SMALL[n]
    elif _LONG_MIN <= n <= _LONG_MAX:
        out += _zigzag_varint(n)
    else:
        raise ValueError(f"{n} is out of the Avro long range")


def write_int(n: int, out: bytearray) -> None:
    if type(n) is int and not _INT_MIN <= n <= _INT_MAX:
        raise ValueError(f"{n} is out of the Avro int range")
    write_long(n, out)


def write_string(s: str, out: bytearray) -> None:
    if type(s) is not str:
        raise TypeError(f"expected a string, got {type(s).__name__}")
    b = s.encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate
    n = len(b)
    out += _SMALL[n] if n < 4096 else _zigzag_varint(n)
    out += b


def write_boolean(v: bool, out: bytearray) -> None:
    if v is True:
        out += b"\x01"
    elif v is False:
        out += b"\x00"
    else:
        raise TypeError(f"expected a boolean, got {type(v).__name__}")


def write_null(v: None, out: bytearray) -> None:
    if v is not None:
        raise TypeError(f"expected null, got {type(v).__name__}")


_PRIMITIVES: dict[str, Write] = {"null": write_null, "boolean": write_boolean, "int": write_int,
                                 "long": write_long, "string": write_string}


def compile_writer(schema: Mapping[str, Any]) -> Callable[[Mapping[str, Any], bytes], bytes]:
    """A function ``(datum, prefix) -> prefix + Avro binary body`` for a record schema in raw
    (JSON) form, resolving named types defined within it. Raises Unsupported for a schema it
    cannot write. The function raises TypeError or ValueError for a datum that does not fit."""
    write = _compile(schema, {}, schema.get("namespace"))

    def encode_body(datum: Mapping[str, Any], prefix: bytes = b"") -> bytes:
        out = bytearray(prefix)
        write(datum, out)
        return bytes(out)

    return encode_body


def compile_type(schema: Any, namespace: str | None = None) -> Write:
    """The writer of one (non-record-level) schema, e.g. an array or map type; named types it
    uses must be defined within it. Raises Unsupported as :func:`compile_writer`."""
    return _compile(schema, {}, namespace)


def _compile(schema: Any, named: dict[str, Write], namespace: str | None) -> Write:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        full = schema if "." in schema or namespace is None else f"{namespace}.{schema}"
        for name in (full, schema):
            if name in named:
                return named[name]
        raise Unsupported(f"unknown type {schema!r}")
    if isinstance(schema, list):
        return _union(schema, named, namespace)
    if not isinstance(schema, Mapping):
        raise Unsupported(f"not a schema: {schema!r}")
    kind = schema.get("type")
    if "logicalType" in schema:
        raise Unsupported(f"logical type {schema['logicalType']!r}")
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "record":
        return _record(schema, named, schema.get("namespace", namespace))
    if kind == "enum":
        writer = _enum(schema["symbols"])
        named[_full_name(schema, namespace)] = writer
        return writer
    if kind == "array":
        return _array(_compile(schema["items"], named, namespace))
    if kind == "map":
        return _map(_compile(schema["values"], named, namespace))
    raise Unsupported(f"type {kind!r}")


def _full_name(schema: Mapping[str, Any], namespace: str | None) -> str:
    name = str(schema["name"])
    ns = schema.get("namespace", namespace)
    return name if "." in name or not ns else f"{ns}.{name}"


def _union(branches: list[Any], named: dict[str, Write], namespace: str | None) -> Write:
    if len(branches) != 2 or branches[0] != "null":
        raise Unsupported(f"union {branches!r} (only [\"null\", T] is compiled)")
    inner = _compile(branches[1], named, namespace)

    def write_nullable(v: Any, out: bytearray) -> None:
        if v is None:
            out += b"\x00"
        else:
            out += b"\x02"
            inner(v, out)

    return write_nullable


_NO_DEFAULT = object()
_SMALL_PRESENT = tuple(b"\x02" + b for b in _SMALL)
"""Union index 1 (the non-null branch) followed by the encoding of 0..4095."""


def _record(schema: Mapping[str, Any], named: dict[str, Write], namespace: str | None) -> Write:
    """A writer generated as Python source with one block per field (no loop, no per-field
    tuple unpacking): most of an ApiCallEvent's fields are null or strings, so the null test
    and string writes are inlined, and a call per field is what costs."""
    full = _full_name(schema, namespace)
    impl: list[Write] = []

    def forward(d: Any, out: bytearray) -> None:  # a reference to the record from within
        impl[0](d, out)

    named[full] = forward  # before the fields: name in scope
    env: dict[str, Any] = {"Mapping": Mapping, "S2": _SMALL_PRESENT, "S": _SMALL,
                           "zz": _zigzag_varint}
    lines = ["def write_record(d, out):",
             "    if type(d) is not dict and not isinstance(d, Mapping):",
             "        raise TypeError(f'expected a record (dict), got {type(d).__name__}')",
             "    get = d.get"]
    for i, f in enumerate(schema["fields"]):
        default = f.get("default", _NO_DEFAULT)
        typ = f["type"]
        nullable = isinstance(typ, list) and len(typ) == 2 and typ[0] == "null"
        if nullable and default not in (None, _NO_DEFAULT):
            raise Unsupported(f"non-null default {default!r} of nullable field {f['name']}")
        if not (default is _NO_DEFAULT or default is None
                or type(default) in (str, bool, int) or default in ({}, [])):
            raise Unsupported(f"default {default!r} of field {f['name']}")
        value_type = typ[1] if nullable else typ
        env[f"W{i}"], env[f"D{i}"] = _compile(value_type, named, namespace), default
        string = value_type == "string" or value_type == {"type": "string"}
        lines += _field_source(i, f["name"], nullable, string, default is _NO_DEFAULT)
    exec("\n".join(lines), env)
    write_record: Write = env["write_record"]
    impl.append(write_record)
    named[full] = write_record
    return write_record


def _field_source(i: int, name: str, nullable: bool, string: bool, no_default: bool) -> list[str]:
    """Source lines writing field ``i`` (value ``v``); as fastavro, a missing nullable field
    and a missing field without default are written as null."""
    get = f"    v = get({name!r})" if nullable or no_default else f"    v = get({name!r}, D{i})"
    if nullable and string:
        return [get, "    if v is None:", "        out += b'\\x00'",
                "    elif type(v) is str:", "        b = v.encode()", "        n = len(b)",
                "        out += S2[n] if n < 4096 else b'\\x02' + zz(n)", "        out += b",
                "    else:", "        out += b'\\x02'", f"        W{i}(v, out)"]
    if nullable:
        return [get, "    if v is None:", "        out += b'\\x00'", "    else:",
                "        out += b'\\x02'", f"        W{i}(v, out)"]
    if string:
        return [get, "    if type(v) is str:", "        b = v.encode()", "        n = len(b)",
                "        out += S[n] if n < 4096 else zz(n)", "        out += b",
                "    else:", f"        W{i}(v, out)"]
    return [get, f"    W{i}(v, out)"]


def _enum(symbols: list[str]) -> Write:
    index = {s: _SMALL[i] for i, s in enumerate(symbols)}

    def write_enum(v: str, out: bytearray) -> None:
        try:
            out += index[v]
        except (KeyError, TypeError):
            raise ValueError(f"{v!r} is not one of the symbols {symbols}") from None

    return write_enum


def _array(item: Write) -> Write:
    def write_array(v: list[Any], out: bytearray) -> None:
        if type(v) is not list:
            raise TypeError(f"expected a list, got {type(v).__name__}")
        if v:
            write_long(len(v), out)
            for x in v:
                item(x, out)
        out += b"\x00"

    return write_array


def _map(value: Write) -> Write:
    def write_map(v: Mapping[str, Any], out: bytearray) -> None:
        if type(v) is not dict and not isinstance(v, Mapping):
            raise TypeError(f"expected a map (dict), got {type(v).__name__}")
        if v:
            write_long(len(v), out)
            for k, x in v.items():
                write_string(k, out)
                value(x, out)
        out += b"\x00"

    return write_map
