"""List only the lake objects a query can need, by walking the Hive prefixes of ``events/``.

The archiver writes ``events/account=<id>/region=<r>/date=YYYY-MM-DD/hour=HH/<object>``
(:mod:`pipeline.lake.layout`). A year of hourly objects for 200 accounts x 17 regions is ~30M
keys, so listing all of them before every query is what makes a filtered query slow. Walking
level by level instead, a level whose values are known goes straight to those prefixes (no
listing of their siblings) and only an unconstrained level is listed, non-recursively (on S3
that is a delimiter listing: one call returns the level's "directories", not the objects
below them). Below the last constrained level, one recursive listing takes everything, so an
unconstrained walk finds exactly what a recursive listing of ``events/`` finds.

:class:`PartitionFilter` is an over-approximation by design: it only ever removes prefixes
whose objects cannot hold a wanted row; the query's own predicates still filter the rows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow.fs as pafs

from pipeline.lake.layout import HOUR_MS, part_value

LEVELS = ("account", "region", "date", "hour")
"""The Hive partition levels under ``events/``, outermost first."""
MAX_PROBES = 64
"""A constrained level with more wanted values than this per directory is listed once and
filtered by name instead: one delimiter listing is cheaper than dozens of prefix probes."""
LISTING_THREADS = 16
"""Listing calls in flight at once: on S3 each is a round trip, and a level takes one call per
directory of the level above (pyarrow's filesystems are safe to share between threads)."""
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class PartitionFilter:
    """The partition values a query can need, per level: ``None`` means any value, an empty
    set means none (nothing is listed). Values are as the view shows them (unquoted)."""

    accounts: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    dates: frozenset[str] | None = None      # 'YYYY-MM-DD'
    hours: frozenset[str] | None = None      # 'HH' (00..23)

    def levels(self) -> tuple[tuple[str, frozenset[str] | None], ...]:
        return tuple(zip(LEVELS, (self.accounts, self.regions, self.dates, self.hours),
                         strict=True))

    @property
    def unconstrained(self) -> bool:
        return all(values is None for _, values in self.levels())


@dataclass(slots=True)
class Listing:
    """The outcome of :func:`list_events`."""

    files: list[str] = field(default_factory=list)
    """Full paths (as the filesystem names them), sorted, only ``*.parquet``."""
    listed: int = 0
    """Entries returned by all listing calls (files and directories): "objects listed"."""
    calls: int = 0
    """Listing calls made."""

    def list_dirs(self, fs: pafs.FileSystem, paths: list[str],
                  recursive: bool) -> list[pafs.FileInfo]:
        """The entries of every directory of ``paths`` (none for a missing one), listed
        concurrently, counting the calls and the entries."""
        def one(path: str) -> list[pafs.FileInfo]:
            selector = pafs.FileSelector(path, recursive=recursive, allow_not_found=True)
            infos: list[pafs.FileInfo] = fs.get_file_info(selector)
            return infos

        if len(paths) <= 1:
            results = [one(p) for p in paths]
        else:
            with ThreadPoolExecutor(min(LISTING_THREADS, len(paths))) as pool:
                results = list(pool.map(one, paths))
        self.calls += len(paths)
        self.listed += sum(len(r) for r in results)
        return [info for infos in results for info in infos]


def list_events(fs: pafs.FileSystem, events_root: str, pf: PartitionFilter) -> Listing:
    """The Parquet objects under ``events_root`` (the lake's ``events/`` directory, as ``fs``
    names it) whose Hive prefixes ``pf`` allows, with the listing work done. Missing prefixes
    are not an error. With no constraint at all this is one recursive listing."""
    listing = Listing()
    levels = pf.levels()
    if any(values == frozenset() for _, values in levels):
        return listing
    last = max((i for i, (_, values) in enumerate(levels) if values is not None), default=-1)
    dirs = [events_root.rstrip("/")]
    for name, values in levels[:last + 1]:
        dirs = _children(fs, listing, dirs, name, values)
    files = (i.path for i in listing.list_dirs(fs, dirs, recursive=True)
             if i.type == pafs.FileType.File and i.path.endswith(".parquet"))
    listing.files = sorted(files)
    return listing


def _children(fs: pafs.FileSystem, listing: Listing, dirs: list[str], name: str,
              values: frozenset[str] | None) -> list[str]:
    """The subdirectories of ``dirs`` at level ``name`` that may hold wanted objects."""
    if values is not None and len(values) <= MAX_PROBES:
        return [f"{d}/{name}={part_value(v)}" for d in dirs for v in sorted(values)]
    subdirs = [i.path for i in listing.list_dirs(fs, dirs, recursive=False)
               if i.type == pafs.FileType.Directory]
    if values is None:
        # Every subdirectory, whatever its name: a key that strays from the layout still
        # reaches the query, which decides by its own predicates.
        return subdirs
    wanted = {f"{name}={part_value(v)}" for v in values}
    return [d for d in subdirs if d.rsplit("/", 1)[-1] in wanted]


def window_filter(from_ms: int, to_ms: int, accounts: frozenset[str] | None = None,
                  regions: frozenset[str] | None = None) -> PartitionFilter:
    """The partitions that can hold events with event time in ``[from_ms, to_ms)``: the UTC
    dates it touches, and its hours when it lies within one UTC day (else any hour, an
    over-approximation). An empty window allows nothing."""
    if to_ms <= from_ms:
        return PartitionFilter(accounts, regions, frozenset(), frozenset())
    first_day_ms = from_ms - from_ms % DAY_MS
    last_ms = to_ms - 1
    days = range(first_day_ms, last_ms + 1, DAY_MS)
    dates = frozenset(_utc(ms).strftime("%Y-%m-%d") for ms in days)
    hours = None
    if len(dates) == 1:
        first_hour_ms = from_ms - from_ms % HOUR_MS
        hours = frozenset(_utc(ms).strftime("%H")
                          for ms in range(first_hour_ms, last_ms + 1, HOUR_MS))
    return PartitionFilter(accounts, regions, dates, hours)


def _utc(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
