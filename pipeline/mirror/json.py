"""ApiCallEvent batch table -> CloudTrail JSON, one text per row, columnar.

Contract: for every row of a batch table (the event columns as
:class:`~pipeline.events.batch.AvroBatchDecoder` gives them, any extra columns ignored),
``json.loads(cloudtrail_json(table)[i]) == from_avro(datum_i)`` where ``from_avro`` is
:func:`pipeline.events.mapping.from_avro`: the same keys, types and values as ingested (key order
is not kept: typed fields first, then the JSON members). Meta fields (``eventTimeMs``,
``ingest``, ``labels``, ...) and the Kafka coordinate columns never appear. A bad row (a JSON
member or ``unmodelled`` that is not JSON text, an ``unmodelled`` that is not an object or
collides with a typed field) makes the whole call raise InvalidDatum, as ``from_avro`` would for
that row; the Runner's bisection then isolates it.

How (the mapping plan of :mod:`pipeline.events.plan` is the model):

1. The typed fields (every kind but JSON) are encoded by polars, a null member (= an absent
   key) left out (:func:`pipeline.mirror.objects.json_members`).
2. Rows with a non-null ``unmodelled`` residual go through Python, that row only: the typed
   object is parsed, the residual merged in (:func:`pipeline.events.plan.merge`) and dumped.
3. The JSON members (requestParameters, ...) are validated (orjson; the standard library,
   which ``from_avro`` uses, when orjson refuses: NaN, big numbers, lone surrogates) and
   spliced in raw, so their numbers and nulls are kept exactly as written.

Measured (``python -m bench.mirror_encode_bench``: 100k generated events, decoded in batches of
10k; CPU time; the shared 2-core box at load average 5-10, so +-30% between runs):
130-157k rows/s, ~6.5 us/row = typed members 4.4 (of which polars' ``json_encode`` ~2.5, about
0.1 us per field value, and the Arrow -> polars conversion 0.5), JSON member check 0.3, splice
and bytes ~1. Without the presence groups (all rows by regex) the typed members cost ~6.
"""

from __future__ import annotations

from collections import deque

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.errors import InvalidDatum
from pipeline.events.plan import Kind, compile_plan, json_text, merge, parse_json_text
from pipeline.events.schemas import default_registry
from pipeline.mirror.objects import json_members

_PLAN = compile_plan(default_registry().get().raw)
TYPED_FIELDS = tuple(f.name for f in _PLAN.fields if f.kind is not Kind.JSON)
"""Top-level CloudTrail fields encoded by polars (strings, booleans, objects, arrays, maps)."""
JSON_MEMBERS = tuple(f.name for f in _PLAN.fields if f.kind is Kind.JSON)
"""Top-level CloudTrail fields held as JSON text, spliced in raw."""


def cloudtrail_json(table: pa.Table) -> list[bytes]:
    """One CloudTrail JSON text (UTF-8) per row of ``table``, in row order (see the module
    docstring for the contract). Raises InvalidDatum when a row cannot be mapped back."""
    if table.num_rows == 0:
        return []
    # One chunk per column (the decoder returns two halves): polars works on each chunk.
    table = table.select([*TYPED_FIELDS, *JSON_MEMBERS, "unmodelled"]).combine_chunks()
    _check_members(table)
    typed = json_members(table, TYPED_FIELDS)
    residual = table.column("unmodelled")
    if residual.null_count < table.num_rows:
        typed = _merge_residuals(typed, table)
    frame = pl.from_arrow(table.select(list(JSON_MEMBERS)))
    assert isinstance(frame, pl.DataFrame)
    # One concatenation (each member with its leading comma), the usual case; a row without
    # typed members gets one comma too many, cut below.
    members = [pl.concat_str([pl.lit(f',"{name}":'), pl.col(name)]) for name in JSON_MEMBERS]
    texts = frame.select(pl.concat_str([pl.lit("{"), pl.lit(typed), *members, pl.lit("}")],
                                       ignore_nulls=True).cast(pl.Binary))
    out: list[bytes] = texts.to_series().to_list()
    for row in (typed == "").arg_true().to_list():
        if out[row].startswith(b"{,"):
            out[row] = b"{" + out[row][2:]
    return out


def _merge_residuals(typed: pl.Series, table: pa.Table) -> pl.Series:
    """``typed`` (members text per row) with the ``unmodelled`` residual merged into the rows
    that have one."""
    residual = table.column("unmodelled")
    rows = pc.indices_nonzero(residual.is_valid()).to_pylist()
    texts = typed.gather(rows).to_list()
    members = table.select(list(JSON_MEMBERS)).take(rows).to_pylist()
    merged = [
        _merge_one(text, rest, [name for name, value in present.items() if value is not None])
        for text, rest, present in zip(texts, residual.take(rows).to_pylist(), members,
                                       strict=True)
    ]
    return typed.scatter(rows, merged)


def _merge_one(typed: str, rest_text: str, members: list[str]) -> str:
    """One row: its typed members text with the residual merged in, as members text.
    ``members`` are the JSON members the row holds (spliced later, so the residual must not
    hold them either)."""
    obj = orjson.loads(f"{{{typed}}}")  # strings, booleans, objects, arrays: orjson is exact
    rest = parse_json_text(rest_text, "unmodelled")
    if type(rest) is not dict:
        raise InvalidDatum("unmodelled must be a JSON object")
    for name in members:
        if name in rest:
            raise InvalidDatum(f"unmodelled.{name} collides with a typed field")
    merge(obj, rest)
    return json_text(obj)[1:-1]


def _check_members(table: pa.Table) -> None:
    """Raise InvalidDatum unless every non-null JSON member is JSON text ``from_avro`` parses."""
    for name in JSON_MEMBERS:
        column = table.column(name)
        if column.null_count == len(column):
            continue
        values = pc.unique(column.drop_null()).to_pylist()  # ("null" and {} repeat a lot)
        try:
            deque(map(orjson.loads, values), maxlen=0)
        except orjson.JSONDecodeError:  # orjson is stricter than the standard library
            for value in values:
                parse_json_text(value, name)
