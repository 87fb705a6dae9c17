"""Canonical replay records: matched rows sorted, each as canonical JSON.

Contract. Records are sorted by (``eventTimeMs``, ``eventID``), ties (and null eventIDs, last)
broken by Kafka (partition, offset), so the order depends only on the records read. Each record
is its CloudTrail JSON (:func:`pipeline.mirror.json.cloudtrail_json`) re-dumped canonically
(:func:`canonical`): keys sorted at every level, no spaces, UTF-8. So the same records give
the same bytes.

How (:func:`json_records`): re-dumping every record costs ~7 us (orjson loads + dumps of the
whole text), more than encoding it. So the canonical text is built sorted in the first place,
column-wise: struct members reordered by name before polars encodes them
(:func:`pipeline.mirror.objects.json_members`, which writes members in column order), the
top-level members joined in name order, and only the raw JSON members (``requestParameters``,
...) re-dumped, once per distinct value. Rows this cannot give exactly go the slow way,
:func:`canonical` over :func:`cloudtrail_json`: an ``unmodelled`` residual (merged in
Python), a map of more than one entry (its keys are in ingest order), a typed text holding a
backslash (polars' escapes are not proven equal to orjson's), a JSON member orjson refuses.
``tests/unit/test_replay_canonical.py`` proves both ways equal over the whole corpus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.mirror.json import JSON_MEMBERS, TYPED_FIELDS, cloudtrail_json
from pipeline.mirror.objects import json_members
from pipeline.replay.hot import OFFSET, PARTITION

ORDER = [("eventTimeMs", "ascending"), ("eventID", "ascending"), (PARTITION, "ascending"),
         (OFFSET, "ascending")]
_NAMES = sorted((*TYPED_FIELDS, *JSON_MEMBERS))
"""Every top-level CloudTrail member, in canonical (code point) order."""
CHUNK_ROWS = 65_536


def sorted_rows(table: pa.Table) -> pa.Table:
    """The rows of a matched table (event columns plus ``_partition``/``_offset``) in the
    module's order."""
    return table.sort_by(ORDER) if table.num_rows else table


def canonical_records(table: pa.Table) -> list[bytes]:
    """The rows of a matched table, sorted by the module's order, as canonical JSON texts."""
    return json_records(sorted_rows(table))


def json_records(ordered: pa.Table) -> list[bytes]:
    """The rows of an already sorted table as canonical JSON texts, in its order: for every
    row, ``canonical(cloudtrail_json(row))``. Raises InvalidDatum as cloudtrail_json does.
    Works through :data:`CHUNK_ROWS` rows at a time, so the column copies it makes stay
    small next to the table."""
    out: list[bytes] = []
    for start in range(0, ordered.num_rows, CHUNK_ROWS):
        out += _chunk_records(ordered.slice(start, CHUNK_ROWS))
    return out


def _chunk_records(ordered: pa.Table) -> list[bytes]:
    table = ordered.select([*TYPED_FIELDS, *JSON_MEMBERS, "unmodelled"]).combine_chunks()
    slow = _slow_rows(table)
    present = {name for name in JSON_MEMBERS
               if table.column(name).null_count < table.num_rows}
    pieces: list[pl.Series] = []
    for run in _runs(present):
        if run[0] in JSON_MEMBERS:
            member, refused = _canonical_member(run[0], table.column(run[0]))
            slow = pc.or_(slow, refused)
            pieces.append(member)
            continue
        members = json_members(_sorted_columns(table, run), run)
        slow = pc.or_(slow, members.str.contains("\\", literal=True).to_arrow())
        pieces.append(members)
    frame = pl.DataFrame({str(i): piece for i, piece in enumerate(pieces)})
    joined = pl.concat_str([pl.when(pl.col(c) != "").then(pl.col(c)) for c in frame.columns],
                           separator=",", ignore_nulls=True)
    texts = frame.select(pl.concat_str([pl.lit("{"), joined, pl.lit("}")]).cast(pl.Binary))
    out: list[bytes] = texts.to_series().to_list()
    rows = pc.indices_nonzero(slow).to_pylist()
    if rows:
        for row, text in zip(rows, cloudtrail_json(ordered.take(rows)), strict=True):
            out[row] = canonical(text)
    return out


def canonical(text: bytes) -> bytes:
    """One JSON text with sorted keys and no spaces. JSON orjson refuses (numbers beyond 64
    bits, NaN, lone surrogates, kept as ingested) goes through the standard library."""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        value = json.loads(text)
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8", "surrogatepass")


def _runs(present: set[str]) -> Iterator[list[str]]:
    """The top-level names in order, as runs: each JSON member of ``present`` alone, the
    typed fields between them together (one polars encode per run); JSON members absent
    from the chunk left out."""
    run: list[str] = []
    for name in _NAMES:
        if name in JSON_MEMBERS and name not in present:
            continue
        if name in JSON_MEMBERS:
            if run:
                yield run
            run = []
            yield [name]
        else:
            run.append(name)
    if run:
        yield run


def _canonical_member(name: str, column: pa.ChunkedArray) -> tuple[pl.Series, pa.Array]:
    """Each value of JSON-text column ``name`` as its member ``"name":<canonical JSON>``
    (a null value gives null: no member), and which rows hold a value orjson refuses (left
    null here: the slow way)."""
    prefix = f'"{name}":'.encode()
    array = column.combine_chunks()
    values = pc.unique(array.drop_null())
    texts: list[bytes | None] = []
    for value in values.to_pylist():
        try:
            texts.append(prefix + orjson.dumps(orjson.loads(value),
                                               option=orjson.OPT_SORT_KEYS))
        except orjson.JSONDecodeError:
            texts.append(None)
    canon = pa.array(texts, pa.binary()).cast(pa.string())
    mapped = pc.take(canon, pc.index_in(array, value_set=values))
    refused = pc.and_(array.is_valid(), mapped.is_null())
    return pl.Series(mapped), refused


def _slow_rows(table: pa.Table) -> pa.Array:
    """Rows with an ``unmodelled`` residual or a map of more than one entry."""
    slow = table.column("unmodelled").combine_chunks().is_valid()
    for name in TYPED_FIELDS:
        for lengths in _map_lengths(table.column(name).combine_chunks()):
            slow = pc.or_(slow, pc.fill_null(pc.greater(lengths, 1), False))
    return slow


def _map_lengths(array: pa.Array) -> Iterator[pa.Array]:
    """Entries per row of every map in ``array`` outside arrays (our schema has none inside)."""
    if isinstance(array.type, pa.MapType):
        yield pc.subtract(array.offsets.slice(1), array.offsets.slice(0, len(array)))
    elif isinstance(array.type, pa.StructType):
        for child in array.flatten():
            yield from _map_lengths(child)


def _sorted_columns(table: pa.Table, names: list[str]) -> pa.Table:
    """Columns ``names`` with the members of every struct (also in arrays) in name order."""
    return pa.table([_sorted(table.column(n).combine_chunks()) for n in names], names=names)


def _sorted(array: pa.Array) -> pa.Array:
    if isinstance(array.type, pa.ListType) and isinstance(array.type.value_type, pa.StructType):
        if array.offset:  # a slice: rebuilt with offset 0 so its offsets and mask line up
            array = pa.concat_arrays([array])
        return pa.ListArray.from_arrays(array.offsets, _sorted(array.values),
                                        mask=array.is_null() if array.null_count else None)
    if not isinstance(array.type, pa.StructType):
        return array
    names = sorted(member.name for member in array.type)
    children = [_sorted(array.field(name)) for name in names]
    return pa.StructArray.from_arrays(children, names=names, mask=array.is_null())
