"""Arrow side of :mod:`pipeline.events.batch`: the Arrow shape of an Avro schema, one native
read of an Avro object-container block, the Avro binary size of decoded rows (to check record
boundaries) and the projection of writer-shaped columns onto the reader schema.

All of it works on whole columns (pyarrow.compute), never per row.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from polars_avro._avro_rs import AvroSource

Names = dict[str, Any]
_SIMPLE = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "boolean": pa.bool_(),
           "double": pa.float64(), "float": pa.float32(), "bytes": pa.binary()}
_SYNC = b"trailpipe.batch!"  # any 16 bytes: the block is ours, never written anywhere


_EMPTY = pa.record_batch([])


class Unsupported(Exception):
    """The schema uses a type the columnar path does not size (general unions, fixed, ...)."""


def resolve(avro: Any, names: Names) -> Any:
    """``avro`` with a named-type reference replaced by its definition; records definitions."""
    if isinstance(avro, str):
        return names.get(avro, avro)
    if isinstance(avro, dict) and avro.get("type") in ("record", "enum", "fixed"):
        names[avro["name"]] = avro
        if avro.get("namespace"):
            names[f"{avro['namespace']}.{avro['name']}"] = avro
    return avro


def nullable_inner(avro: list[Any]) -> Any:
    """T of a union of null and T; Unsupported for any other union."""
    others = [t for t in avro if t != "null"]
    if len(avro) != 2 or len(others) != 1:
        raise Unsupported(f"union {avro}")
    return others[0]


def avro_arrow_type(avro: Any, names: Names | None = None) -> pa.DataType:
    """The Arrow type of a decoded Avro value of schema ``avro`` (nested records are structs,
    maps ``map<string, T>``, enums strings, unions of null and T nullable T)."""
    names = {} if names is None else names
    avro = resolve(avro, names)
    if isinstance(avro, list):
        return avro_arrow_type(nullable_inner(avro), names)
    if isinstance(avro, dict):
        kind = avro["type"]
        if kind == "record":
            return pa.struct([(f["name"], avro_arrow_type(f["type"], names))
                              for f in avro["fields"]])
        if kind == "array":
            return pa.list_(avro_arrow_type(avro["items"], names))
        if kind == "map":
            return pa.map_(pa.string(), avro_arrow_type(avro["values"], names))
        if kind == "enum":
            return pa.string()
        return avro_arrow_type(kind, names)
    return _SIMPLE[avro]


def _zigzag(n: int) -> bytes:
    """Avro's zig-zag varint of a non-negative int."""
    n <<= 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def ocf_header(schema: dict[str, Any]) -> bytes:
    """The header of an uncompressed object-container file with writer ``schema``."""
    meta = [(b"avro.schema", json.dumps(schema).encode()), (b"avro.codec", b"null")]
    body = b"".join(_zigzag(len(k)) + k + _zigzag(len(v)) + v for k, v in meta)
    return b"Obj\x01" + _zigzag(len(meta)) + body + b"\x00" + _SYNC


def read_block(header: bytes, bodies: memoryview, count: int) -> pa.StructArray:
    """The rows of one block of ``count`` records (``bodies`` back to back), read natively, as
    a writer-shaped struct array. Raises whatever the reader raises on bad data."""
    block: list[bytes | memoryview] = [header, _zigzag(count), _zigzag(len(bodies)), bodies,
                                        _SYNC]
    data = io.BytesIO(b"".join(block))
    source = AvroSource([lambda: contextlib.nullcontext(data)], True, False)
    batches, rows = [], 0
    it = source.batch_iter(max(count, 1), None)
    while rows < count:  # never ask for more: with bytes left over, polars-avro 0.13 spins
        native = next(it, None)
        batch = _EMPTY if native is None else pa.record_batch(native)
        if not batch.num_rows:
            break
        batches.append(batch)
        rows += batch.num_rows
    if not batches:
        return pa.array([], pa.struct([]))
    table = pa.Table.from_batches(batches).combine_chunks()
    arrays = [c.chunk(0) if c.num_chunks else pa.array([], c.type) for c in table.columns]
    return pa.StructArray.from_arrays(arrays, fields=list(table.schema))


def _varint_extra(out: pa.Array, bounds: tuple[int, ...], n: pa.Array | None = None
                  ) -> pa.Array:
    """``out`` plus one for every bound ``n`` (default: ``out``) reaches."""
    n = out if n is None else n
    top = pc.max(n).as_py() or 0
    for bound in bounds:
        if top < bound:
            break
        out = pc.add(out, pc.cast(pc.greater_equal(n, bound), pa.int32()))
    return out


def _string_sizes(arr: pa.Array, extra: int = 1) -> pa.Array:
    """varint(len) + len (+ ``extra - 1``) per value (nulls stay null)."""
    n = pc.binary_length(arr)
    return pc.add(_varint_extra(n, (64, 1 << 13, 1 << 20, 1 << 27)), extra)


def _long_sizes(arr: pa.Array) -> pa.Array:
    """Size of each value's zig-zag varint, as int64 (nulls stay null)."""
    v = pc.cast(arr, pa.int64())
    magnitude = pc.if_else(pc.less(v, 0), pc.subtract(pc.negate(v), 1), v)  # zigzag = 2m (+1)
    bounds = tuple(1 << (7 * k - 1) for k in range(1, 10))
    zeros = pc.multiply(magnitude, 0)
    return pc.add(_varint_extra(zeros, bounds, magnitude), 1)


def _summed(item_sizes: pa.Array, offsets: pa.Array, per_item: int) -> pa.Array:
    """Avro block size of each list/map given its items' sizes and the list offsets."""
    cum = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(item_sizes)])
    starts, ends = offsets.slice(0, len(offsets) - 1), offsets.slice(1)
    total = pc.subtract(pc.take(cum, ends), pc.take(cum, starts))
    count = pc.cast(pc.subtract(ends, starts), pa.int64())
    block = pc.add(pc.add(total, pc.multiply(count, per_item)), 1)  # + the 0 end marker
    return pc.add(block, pc.if_else(pc.greater(count, 0), _long_sizes(count), 0))


def encoded_sizes(avro: Any, arr: pa.Array, names: Names) -> pa.Array:
    """The Avro binary size of each value of ``arr`` (decoded with schema ``avro``) when
    written canonically (one block per map/array, shortest varints), as int64."""
    avro = resolve(avro, names)
    if isinstance(avro, list) and resolve(nullable_inner(avro), names) in ("string", "bytes"):
        return pc.fill_null(_string_sizes(arr, 2), 1)  # union index + string, or index only
    if isinstance(avro, list):
        inner = encoded_sizes(nullable_inner(avro), arr, names)
        if arr.null_count:
            inner = pc.if_else(arr.is_valid(), inner, 0)
        return pc.add(inner, 1)
    kind = avro["type"] if isinstance(avro, dict) else avro
    if kind in ("string", "bytes"):
        return _string_sizes(arr)
    if kind in ("long", "int"):
        return _long_sizes(arr)
    fixed = {"boolean": 1, "null": 0, "float": 4, "double": 8}
    if kind in fixed or (kind == "enum" and len(avro["symbols"]) <= 64):
        return pa.repeat(pa.scalar(fixed.get(kind, 1), pa.int64()), len(arr))
    if kind == "record":
        sizes = [encoded_sizes(f["type"], arr.field(f["name"]), names) for f in avro["fields"]]
        total: pa.Array = pa.repeat(pa.scalar(0, pa.int64()), len(arr))
        for size in sizes:
            total = pc.add(total, size)
        return total
    if kind == "array":
        return _summed(encoded_sizes(avro["items"], arr.values, names), arr.offsets, 0)
    if kind == "map":
        entries = pc.add(_string_sizes(arr.keys), encoded_sizes(avro["values"], arr.items, names))
        return _summed(entries, arr.offsets, 0)
    raise Unsupported(f"Avro type {kind}")


def _default_column(field: dict[str, Any], target: pa.DataType, length: int) -> pa.Array:
    """A reader field the writer lacks: its default (null if it has none) on every row."""
    default = field.get("default")
    if isinstance(default, dict) and pa.types.is_map(target):
        default = list(default.items())
    return pa.array([default] * length, target)


def project(arr: pa.Array, avro: Any, target: pa.DataType, names: Names) -> pa.Array:
    """Writer-shaped ``arr`` as the reader's ``target`` (Avro schema ``avro``): record fields
    matched by name (writer-only fields dropped, reader-only fields take their default),
    other types cast (enum dictionaries to strings, promotions)."""
    avro = resolve(avro, names)
    if isinstance(avro, list):
        avro = resolve(nullable_inner(avro), names)
    if arr.type == target:
        return arr
    mask = arr.is_null() if arr.null_count else None
    if pa.types.is_struct(target) and pa.types.is_struct(arr.type):
        have = {f.name for f in arr.type}
        children = [project(arr.field(f.name), af["type"], f.type, names) if f.name in have
                    else _default_column(af, f.type, len(arr))
                    for f, af in zip(target, avro["fields"], strict=True)]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    if pa.types.is_list(target) and pa.types.is_list(arr.type):
        values = project(arr.values, avro["items"], target.value_type, names)
        return pa.ListArray.from_arrays(arr.offsets, values, type=target, mask=mask)
    return arr.cast(target)
