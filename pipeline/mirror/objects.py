"""Arrow columns -> one JSON object per row, a null member written as an absent key (polars).

:func:`json_members` is the typed half of :func:`pipeline.mirror.json.cloudtrail_json`. Polars
encodes a struct column as JSON (``struct.json_encode``: strings escaped correctly, booleans as
booleans, maps as objects) but writes a null member as ``"name":null``. Two ways out, both
exact, and the batch uses whichever is cheaper for each group of rows:

* **By presence**: rows are grouped by which of the batch's sometimes-null members they hold
  (a bit per member); a group of at least :data:`MIN_GROUP_ROWS` rows is encoded from a struct
  rebuilt with only the members its rows hold, so nothing needs deleting. Real batches are
  dominated by a few event shapes, so most rows go this way.
* **By text**: the other rows are encoded whole and their null members deleted by two regex
  passes that can only match structure: a JSON string never holds an unescaped ``"``, so
  ``,"<name>":null`` with ``<name>`` = ``[A-Za-z0-9_]+`` (our Avro field names) is always a
  member, never string content. The same passes also clean a group-encoded text that still
  holds ``":null`` (nulls inside arrays of records, more than 62 sometimes-null members).

Members that are null in every row of the batch are dropped before any of this. Map values are
never null (Avro ``map<string>``), so a map never loses a key. The polars encodes of a batch's
groups are submitted together, so polars runs them on its threads in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pyarrow as pa

MIN_GROUP_ROWS = 128
"""Rows a presence group needs to be encoded on its own (below: one polars call costs more than
the regex passes it saves)."""

_NAME = r'"[A-Za-z0-9_]+"'
_LATER_NULL = "," + _NAME + ":null"  # a null member after another member: delete it
_FIRST_NULL = r"\{" + _NAME + r":null(?:,|(\}))"  # a first null member: keep "{" (and "}")
_MAX_BITS = 62
# A column of {} (a repeated literal: a struct of literals alone would be one row long).
_EMPTY_OBJECT = pl.repeat(pl.lit({}, dtype=pl.Struct([])), pl.len())
Path = tuple[str, ...]


def json_members(table: pa.Table, names: Sequence[str]) -> pl.Series:
    """Columns ``names`` of ``table`` as the members of one JSON object per row, without its
    braces (String, in row order; ``""`` for no member), with no member for a null value."""
    frame = _pruned_frame(table, names)
    if frame.width == 0:
        return pl.Series("members", [""] * table.num_rows, pl.String)
    nodes = _nodes(frame.schema)
    nulls = frame.select([e.null_count().alias(str(i))
                          for i, e in enumerate(nodes.values())]).row(0)
    always = {p for p, n in zip(nodes, nulls, strict=True) if n == 0}
    varying = [p for p, n in zip(nodes, nulls, strict=True) if 0 < n < frame.height]
    bits, overflow = varying[:_MAX_BITS], set(varying[_MAX_BITS:])
    if not bits:
        return _encode_all([(frame, always | overflow, overflow)])[0]
    signature = frame.select(pl.sum_horizontal(
        [nodes[p].is_not_null().cast(pl.Int64) * (1 << i) for i, p in enumerate(bits)]
    )).to_series()
    order = signature.arg_sort()
    ordered = frame.select(pl.all().gather(order))
    runs = signature.gather(order).rle().struct.unnest()
    jobs: list[_Job] = []
    spans, loose, start = [], [], 0
    for length, sig in runs.iter_rows():
        if length < MIN_GROUP_ROWS:
            loose.append(pl.int_range(start, start + length, eager=True))
        else:
            held = {p for i, p in enumerate(bits) if sig >> i & 1}
            jobs.append((ordered.slice(start, length), always | overflow | held, overflow))
            spans.append(pl.int_range(start, start + length, eager=True))
        start += length
    if loose:
        spans.append(pl.concat(loose))
        jobs.append((ordered[spans[-1]], None, set()))
    rows = order.gather(pl.concat(spans))  # the input row of each text of the jobs
    return pl.concat(_encode_all(jobs)).gather(rows.arg_sort())


def _pruned_frame(table: pa.Table, names: Sequence[str]) -> pl.DataFrame:
    """The columns ``names`` as a polars frame, without what is null in every row."""
    columns, kept = [], []
    for name in names:
        column = table.column(name)
        if column.null_count == len(column):
            continue
        if isinstance(column.type, pa.StructType | pa.ListType):
            column = _pruned(column.combine_chunks())
        columns.append(column)
        kept.append(name)
    frame = pl.from_arrow(pa.table(columns, names=kept))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _pruned(array: pa.Array) -> pa.Array:
    """``array`` without the struct members that are null in every row or element
    (recursively, also in the records of an array of records). A struct whose members are all
    pruned keeps its first one (``{"x":null}``, which becomes ``{}``)."""
    if isinstance(array.type, pa.ListType) and isinstance(array.type.value_type, pa.StructType):
        if array.offset:  # a slice: rebuilt with offset 0 so its offsets and mask line up
            array = pa.concat_arrays([array])
        return pa.ListArray.from_arrays(array.offsets, _pruned(array.values),
                                        mask=array.is_null() if array.null_count else None)
    if not isinstance(array.type, pa.StructType):
        return array
    children, names = [], []
    for i, member in enumerate(array.type):
        child = array.field(i)  # sliced like its parent
        if child.null_count < len(child):
            children.append(_pruned(child))
            names.append(member.name)
    if not children:
        children, names = [array.field(0)], [array.type[0].name]
    return pa.StructArray.from_arrays(children, names=names, mask=array.is_null())


def _nodes(schema: pl.Schema) -> dict[Path, pl.Expr]:
    """Every column and struct member (not inside arrays or maps), by path."""
    out: dict[Path, pl.Expr] = {}

    def walk(fields: Sequence[pl.Field], parent: pl.Expr | None, path: Path) -> None:
        for field in fields:
            expr = pl.col(field.name) if parent is None else parent.struct.field(field.name)
            out[(*path, field.name)] = expr
            if isinstance(field.dtype, pl.Struct):
                walk(field.dtype.fields, expr, (*path, field.name))

    walk([pl.Field(name, dtype) for name, dtype in schema.items()], None, ())
    return out


_Job = tuple[pl.DataFrame, set[Path] | None, set[Path]]
"""Rows to encode, the members they all hold (None: any, then the null passes), and the held
members that may still be null in some of them."""


def _encode_all(jobs: Sequence[_Job]) -> list[pl.Series]:
    """Members text of each job's rows. The polars encodes of all jobs run at once (in
    parallel on polars' threads); the cheap text steps after them one by one."""
    queries = [_queries(*job) for job in jobs]
    results = iter(pl.collect_all([q for qs in queries for q, _ in qs]))
    out = []
    for (frame, _, _), qs in zip(jobs, queries, strict=True):
        parts = []
        for _, strip in qs:
            text = next(results).to_series()
            parts.append(_inner(text, strip or text.str.contains('":null', literal=True).any()))
        out.append(_joined(parts, frame.height))
    return out


def _queries(frame: pl.DataFrame, held: set[Path] | None, maybe: set[Path]
             ) -> list[tuple[pl.LazyFrame, bool]]:
    """The polars queries that encode a job's rows as JSON objects, and whether their null
    members must be deleted (False: only if a ``":null`` shows). One query with every member
    (``held`` None); else one with the held members (structs rebuilt with only theirs) and one
    per held array of records (whose records may hold nulls: a short text to clean)."""
    lazy = frame.lazy()
    if held is None:
        return [(lazy.select(_object(pl.struct(frame.columns))), True)]
    fields = [pl.Field(name, dtype) for name, dtype in frame.schema.items()]
    members = _members([f for f in fields if not isinstance(f.dtype, pl.List)], None, (), held,
                       maybe)
    out = [(lazy.select(_object(pl.struct(members))), False)] if members else []
    out += [(lazy.select(_object(pl.struct(f.name))), False) for f in fields
            if isinstance(f.dtype, pl.List) and (f.name,) in held]
    return out


def _joined(parts: list[pl.Series], height: int) -> pl.Series:
    """Members texts joined by "," per row (an empty one skipped)."""
    if len(parts) < 2:
        return parts[0] if parts else pl.Series("members", [""] * height, pl.String)
    return pl.select(pl.concat_str([_non_empty(pl.lit(p)) for p in parts], separator=",",
                                   ignore_nulls=True)).to_series()


def _non_empty(text: pl.Expr) -> pl.Expr:
    """``text``, null where it is empty (so that joining with "," skips it)."""
    return pl.when(text != "").then(text)


def _object(struct: pl.Expr) -> pl.Expr:
    return struct.struct.json_encode()


def _inner(objects: pl.Series, nulls: bool) -> pl.Series:
    """The members text of JSON objects (braces cut off), null members deleted if ``nulls``."""
    if nulls:
        objects = objects.str.replace_all(_LATER_NULL, "").str.replace_all(_FIRST_NULL, "{${1}")
    return objects.str.slice(1).str.head(-1)  # "{" and "}": cheap on polars' string views


def _members(fields: Sequence[pl.Field], parent: pl.Expr | None, path: Path,
             held: set[Path], maybe: set[Path]) -> list[pl.Expr]:
    """The members of a struct (or the top level) that are in ``held``; structs rebuilt with
    only their held members, except those in ``maybe`` (held, but null in some rows: kept
    whole, for the null passes)."""
    out = []
    for field in fields:
        here = (*path, field.name)
        if here not in held:
            continue
        expr = pl.col(field.name) if parent is None else parent.struct.field(field.name)
        if isinstance(field.dtype, pl.Struct) and here not in maybe:
            inner = _members(field.dtype.fields, expr, here, held, maybe)
            expr = pl.struct(inner) if inner else _EMPTY_OBJECT
        out.append(expr.alias(field.name))
    return out
