"""The cold path: the part of a replay window the topic no longer holds, read from the lake.

When (:func:`cold_scope`). ``source`` (``--source``) is ``"kafka"`` (never the lake),
``"lake"`` (only the lake: the topic is not read at all) or ``"auto"``: the lake is read when
the topic does not exist (no plan), or for each planned partition that retention may have
truncated (:attr:`~pipeline.replay.plan.PartitionRange.maybe_truncated`: its log start offset
is above 0 and the hot read starts there, so older records of the window may be gone; a
partition whose records were all deleted has ``start == end == low > 0`` and counts too). A
topic that exists and was never truncated is read from Kafka alone, even when the lake also
holds its records: every record the lake has, the topic still has.

Which rows (:class:`ColdScope`). In ``auto`` the lake is read only for the truncated partitions
and only below the hot read's start offset (``offsets_below``), so the two sources meet at one
offset per partition: no gap (everything below the start comes from the lake, everything from
it from Kafka) and, by construction, no overlap; :func:`pipeline.replay.seam.merge` still drops
any (partition, offset) both return. Lake-only reads the plan's partitions below the high
watermarks captured at start when there is a plan (so the same command reads the same rows
while the archiver goes on writing), everything otherwise.

How (:func:`read_cold`). The listing is pruned by the Hive prefixes the window and the
account/region filters allow (:func:`pipeline.lake.listing.window_filter`); an object is then
kept only when its key names the topic and a wanted partition and its first offset is below the
partition's bound (keys are ``<topic>+<partition>+<first offset>.parquet``). Each kept object
is read whole once (its SHA-256 is of the bytes as read, for the manifest) and scanned with the
window and offset bounds pushed into the Parquet read, so row groups whose statistics exclude
them are not decoded. The rows are converted column-wise to the decoded events table shape
(:func:`pipeline.replay.lake_rows.decoded_table`) and filtered with the same
:func:`pipeline.replay.filters.mask` as the hot path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.lake.listing import list_events, window_filter
from pipeline.replay.filters import Filters, mask
from pipeline.replay.hot import OFFSET, PARTITION
from pipeline.replay.lake_rows import decoded_table, empty_decoded
from pipeline.replay.plan import Plan

Source = Literal["auto", "kafka", "lake"]
SOURCES: tuple[Source, ...] = ("auto", "kafka", "lake")


@dataclass(frozen=True, slots=True)
class ColdScope:
    """What to read from the lake: the Kafka ``partitions`` (None: any) and, per partition,
    the offset below which rows are wanted (``offsets_below``; None: no bound; a partition
    missing from it has no bound either). ``hot`` says whether Kafka is read too."""

    partitions: frozenset[int] | None
    offsets_below: Mapping[int, int] | None
    hot: bool

    def to_json(self) -> dict[str, Any]:
        return {"partitions": None if self.partitions is None else sorted(self.partitions),
                "offsets_below": None if self.offsets_below is None else
                {str(p): o for p, o in sorted(self.offsets_below.items())},
                "hot": self.hot}


def cold_scope(plan: Plan | None, source: Source) -> ColdScope | None:
    """The lake read a replay needs (see the module contract), or None when the lake is not
    read. ``plan`` is None when the topic does not exist (``make_plan`` raised ReplayError).
    Raises ValueError for an unknown source, or for ``"kafka"`` without a plan."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: one of {', '.join(SOURCES)}")
    if source == "kafka":
        if plan is None:
            raise ValueError("--source kafka: the topic does not exist")
        return None
    if plan is None:
        return ColdScope(None, None, hot=False)
    if source == "lake":
        return ColdScope(frozenset(r.partition for r in plan.ranges),
                         {r.partition: r.end for r in plan.ranges}, hot=False)
    truncated = [r for r in plan.ranges if r.maybe_truncated]
    if not truncated:
        return None
    return ColdScope(frozenset(r.partition for r in truncated),
                     {r.partition: r.start for r in truncated}, hot=True)


def cold_needed(plan: Plan | None, source: Source = "auto") -> bool:
    """True when :func:`cold_scope` reads the lake."""
    return cold_scope(plan, source) is not None


@dataclass(frozen=True, slots=True)
class ObjectRead:
    """One lake object read: key (relative to the lake, ``events/...``), size and SHA-256 of
    its bytes as read, rows in it and rows kept by the filters. Whether a digest covers it:
    :func:`pipeline.replay.lake_digests.digest_coverage`."""

    key: str
    size_bytes: int
    sha256: str
    rows: int
    matched: int


@dataclass(slots=True)
class ColdResult:
    """The matched rows (decoded events columns plus ``_partition``/``_offset``) and the
    counters: objects listed (listing entries) and listing calls, objects read, rows scanned
    (every row of the objects read) and matched."""

    table: pa.Table
    objects: list[ObjectRead] = field(default_factory=list)
    listed: int = 0
    listing_calls: int = 0
    candidates: int = 0
    rows_scanned: int = 0
    complete: bool = True

    @property
    def rows_matched(self) -> int:
        return int(self.table.num_rows)

    def summary(self) -> dict[str, Any]:
        return {"objects_listed": self.listed, "listing_calls": self.listing_calls,
                "objects_candidate": self.candidates, "objects_read": len(self.objects),
                "rows_scanned": self.rows_scanned, "matched": self.rows_matched,
                "complete": self.complete}


@dataclass(frozen=True, slots=True)
class ColdListing:
    """The objects a cold read reads (full paths as the filesystem names them, sorted) and
    the listing work done to find them (entries listed, listing calls)."""

    paths: list[str]
    listed: int
    calls: int


def list_cold(fs: pafs.FileSystem, events_root: str, topic: str, filters: Filters, *,
              partitions: frozenset[int] | set[int] | None = None,
              offsets_below: Mapping[int, int] | None = None) -> ColdListing:
    """The objects of ``topic`` under ``events_root`` (the lake's ``events/`` directory as
    ``fs`` names it) that can hold rows of ``filters`` in ``partitions`` below
    ``offsets_below``: the listing pruned by the window's dates/hours and the account/region
    filters, then objects kept by the coordinates their names give. Raises OSError."""
    accounts = None if filters.account is None else frozenset({filters.account})
    regions = None if filters.region is None else frozenset({filters.region})
    listing = list_events(fs, events_root, window_filter(filters.from_ms, filters.to_ms,
                                                         accounts, regions))
    wanted = [path for path in listing.files
              if _wanted(object_coordinates(path), topic, partitions, offsets_below)]
    return ColdListing(wanted, listing.listed, listing.calls)


def describe_cold(fs: pafs.FileSystem, events_root: str, listing: ColdListing
                  ) -> dict[str, Any]:
    """For ``--dry-run``: the objects a cold read would read (key relative to the lake,
    size), their total bytes and the listing work. One metadata request per object; rows
    are not estimated (that would open every footer)."""
    root = events_root.rstrip("/")
    infos = fs.get_file_info(listing.paths) if listing.paths else []
    objects = [{"key": _relative_key(root, i.path), "size_bytes": i.size or 0} for i in infos]
    return {"objects": objects, "estimated_bytes": sum(o["size_bytes"] for o in objects),
            "objects_listed": listing.listed, "listing_calls": listing.calls}


def read_cold(fs: pafs.FileSystem, events_root: str, topic: str, filters: Filters, *,
              partitions: frozenset[int] | set[int] | None = None,
              offsets_below: Mapping[int, int] | None = None,
              stop: Callable[[], bool] = lambda: False,
              progress: Callable[[ColdResult], None] = lambda _result: None) -> ColdResult:
    """Read the objects :func:`list_cold` finds and return the matched rows, objects in key
    order (see the module contract). ``progress(result)`` after each object; ``stop()``
    (checked before each object) ends the read early with ``complete`` false. Raises
    OSError/ArrowInvalid when an object cannot be read or is not Parquet."""
    listing = list_cold(fs, events_root, topic, filters, partitions=partitions,
                        offsets_below=offsets_below)
    root = events_root.rstrip("/")
    result = ColdResult(empty_decoded(), listed=listing.listed, listing_calls=listing.calls,
                        candidates=len(listing.paths))
    tables: list[pa.Table] = []
    for path in listing.paths:
        if stop():
            result.complete = False
            break
        table, read = _read_object(fs, path, _relative_key(root, path), filters, offsets_below)
        tables.append(table)
        result.objects.append(read)
        result.rows_scanned += read.rows
        progress(result)
    if tables:
        result.table = pa.concat_tables(tables)
    return result


def object_coordinates(path: str) -> tuple[str, int, int] | None:
    """(topic, partition, first offset) a lake object's name gives, or None when the name is
    not ``<topic>+<partition>+<first offset>.parquet`` (topic names cannot contain ``+``)."""
    name = path.rsplit("/", 1)[-1].removesuffix(".parquet")
    parts = name.rsplit("+", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


def _wanted(coords: tuple[str, int, int] | None, topic: str,
            partitions: frozenset[int] | set[int] | None,
            offsets_below: Mapping[int, int] | None) -> bool:
    if coords is None or coords[0] != topic:
        return False
    _, partition, first = coords
    if partitions is not None and partition not in partitions:
        return False
    bound = None if offsets_below is None else offsets_below.get(partition)
    return bound is None or first < bound


def _relative_key(root: str, path: str) -> str:
    """``events/...``: the object's key relative to the lake (as digests list it)."""
    events_dir = root.rsplit("/", 1)[-1]
    return f"{events_dir}/{path[len(root) + 1:]}"


def _read_object(fs: pafs.FileSystem, path: str, key: str, filters: Filters,
                 offsets_below: Mapping[int, int] | None) -> tuple[pa.Table, ObjectRead]:
    """One object: its bytes hashed, its rows in the window (and offset bounds) decoded from
    the row groups their statistics allow, converted and filtered."""
    with fs.open_input_stream(path) as stream:
        data = stream.read()
    rows = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
    lake = pq.read_table(pa.BufferReader(data), filters=_pushdown(filters, offsets_below))
    table = decoded_table(lake)
    kept = table.filter(mask(table, filters))
    return kept, ObjectRead(key, len(data), hashlib.sha256(data).hexdigest(), rows,
                            kept.num_rows)


def _pushdown(filters: Filters, offsets_below: Mapping[int, int] | None) -> pc.Expression:
    """The window on ``_event_time_ms`` and the per-partition offset bounds, as a dataset
    filter (row-group statistics prune with it; the mask still decides every row)."""
    times = pc.field("_event_time_ms")
    expr = (times >= filters.from_ms) & (times < filters.to_ms)
    if offsets_below:
        bounds = [(pc.field(PARTITION) == p) & (pc.field(OFFSET) < o)
                  for p, o in sorted(offsets_below.items())]
        either = bounds[0]
        for b in bounds[1:]:
            either = either | b
        unbounded = ~pc.field(PARTITION).isin(sorted(offsets_below))
        expr = expr & (either | unbounded)
    return expr
