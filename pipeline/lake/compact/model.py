"""``trailpipe lake compact``: merge the small Parquet objects of a Hive partition into larger
ones, dropping exact duplicates, without ever leaving the lake unreadable or unverifiable.

What it does, for each Hive partition ``events/account=*/region=*/date=D/hour=*`` and topic
with at least ``min_objects`` objects smaller than ``small_object_bytes``: read them (a
*unit*, at most ``max_input_bytes`` of them), concatenate, sort by (``_partition``,
``_offset``), keep the first row of each (``_partition``, ``_offset``) and write the rows as
zstd Parquet objects of about ``target_object_bytes`` (estimated from the inputs' compressed
bytes per row), same columns, in the same Hive partition, under keys that are a function of the
replaced keys only::

    <topic>+compacted+<first 16 hex of SHA-256 of the sorted replaced keys>+<nnn>.parquet

Archiver keys are ``<topic>+<partition>+<19-digit offset>.parquet``: the second field of a
compacted key is not a number, so the two can never collide; and compacting the same set of
objects again yields the same keys. Hours that ended less than ``settle_ms`` ago are left
alone (the archiver may still be writing them).

Protocol of one unit (each step is idempotent; the *intent* makes a re-run finish the unit):

0. intent: ``_compactions/<account/region/date/hour>/<id>.json`` written with
   ``if_none_match`` -- the replaced keys, the output keys and each output's row count;
1. outputs written with ``if_none_match`` (an existing output is kept, after checking its row
   count), then a :class:`~pipeline.lake.layout.Delivery` notice for each, flushed;
2. a :class:`~pipeline.lake.digest.model.Compaction` notice (replaced, by), flushed;
3. the replaced objects deleted, then the intent.

Crash analysis (a re-run of the same command -- same date, same or no ``--account`` --
completes every interrupted unit first, from its intent, before planning new ones):

* before 0: nothing changed.
* after 0, during 1 (some outputs written): every replaced object still exists, so readers see
  each row at least once; rows present twice have the same (``_partition``, ``_offset``) and
  readers de-duplicate on it. ``lake validate`` reports the written outputs as ``unlisted``
  until the re-run announces them and the digester closes that hour. The re-run rebuilds the
  rows from the replaced objects (deletion never starts before every output exists), slices
  them by the intent's row counts -- the merged order is a pure function of the inputs -- and
  writes only the missing outputs.
* after 1 (outputs announced, compaction not): once digested, old and new objects are all
  listed and present: ``validate`` is green and readers de-duplicate. The re-run re-announces
  (the digester skips notices a recent digest already lists) and continues.
* after 2, during 3: the digest of that hour records the compaction, so replaced objects may
  be absent; those left over are unchanged and still verify. The re-run deletes the rest.
* after 3 (intent not deleted yet): the re-run re-announces and deletes the intent.

Between a compaction and the digest of the hour it ran in, ``validate`` reports the new
objects ``unlisted`` and deleted ones ``missing`` (as for any object delivered into an old
hour); once the digester closes that hour -- it lists the outputs and records the compaction --
it is green again. Run one ``lake compact`` per lake at a time (concurrent runs do not lose
data, but may announce twice). Only objects under ``events/`` are touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024
STAGES = ("intent", "written", "announced", "recorded", "deleted")
"""Points of a unit after which the test hook is called (a crash there is survivable)."""


class CompactConfig(BaseModel):
    """``[compact]``: how ``trailpipe lake compact`` sizes and groups objects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_object_bytes: int = Field(
        default=128 * MIB, ge=1024, description="size of a compacted object (estimated from "
        "the inputs' compressed bytes per row; compaction usually comes out smaller)")
    min_objects: int = Field(
        default=2, ge=2, description="compact a partition only with at least this many small "
        "objects (per topic)")
    small_object_bytes: int | None = Field(
        default=None, ge=1, description="objects at least this big are left alone; default "
        "half of target_object_bytes")
    max_input_bytes: int = Field(
        default=256 * MIB, ge=1024, description="most compressed input bytes merged in memory "
        "at once (peak memory is several times this); a partition with more small objects is "
        "merged in several units (rows duplicated across two units are then both kept; "
        "readers de-duplicate)")
    settle_ms: int = Field(
        default=2 * 3_600_000, ge=0, description="leave hours that ended less than this long "
        "ago alone (the archiver may still write them)")
    zstd_level: int = Field(default=3, ge=1, le=22)
    row_group_rows: int = Field(default=128 * 1024, ge=1024)

    @property
    def small_bytes(self) -> int:
        return self.small_object_bytes or self.target_object_bytes // 2


@dataclass(slots=True)
class PartitionResult:
    """What happened in one Hive partition (``events/account=../region=../date=../hour=..``)."""

    partition: str
    objects_before: int
    objects_after: int = 0
    replaced: int = 0
    written: int = 0
    rows_in: int = 0
    rows_out: int = 0
    resumed: int = 0
    status: str = "unchanged"

    @property
    def duplicates_dropped(self) -> int:
        return self.rows_in - self.rows_out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duplicates_dropped": self.duplicates_dropped}


@dataclass(slots=True)
class Summary:
    """The outcome of one run; ``ok`` when no partition failed."""

    date: str
    dry_run: bool
    partitions: list[PartitionResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def totals(self) -> dict[str, int]:
        names = ("objects_before", "objects_after", "replaced", "written", "rows_in",
                 "rows_out", "duplicates_dropped", "resumed")
        out = {n: sum(getattr(p, n) for p in self.partitions) for n in names}
        out["partitions"] = len(self.partitions)
        out["partitions_compacted"] = sum(p.replaced > 0 for p in self.partitions)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date, "dry_run": self.dry_run, "ok": self.ok,
                "totals": self.totals(), "partitions": [p.to_dict() for p in self.partitions],
                "errors": list(self.errors)}
