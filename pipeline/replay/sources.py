"""Where a replay's records come from: the topic (hot), the lake (cold), and their seam.

Contract. :func:`plan_sources` makes the hot plan (None when the topic does not exist) and
decides the lake read (:func:`pipeline.replay.cold.cold_scope`): with ``--source auto`` the
lake is read only for partitions whose older records retention removed, and only below the
offset where the hot read starts, so the two meet at one offset per partition; ``lake`` reads
the lake alone (below the high watermarks captured at start); ``kafka`` the topic alone.
:func:`read_sources` reads both and merges them on (partition, offset), the hot copy winning
(:func:`pipeline.replay.seam.merge`): one stream, no gap, no duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from confluent_kafka import Consumer

from pipeline.config import Config
from pipeline.lake.layout import EVENTS_DIR
from pipeline.replay.cold import ColdResult, ColdScope, Source, cold_scope
from pipeline.replay.filters import Filters
from pipeline.replay.hot import HotResult, ReplayError, make_plan, read_plan
from pipeline.replay.plan import Plan


@dataclass(frozen=True, slots=True)
class Sources:
    """What a run reads: the hot ``plan`` (None: no topic, or not read) and the lake
    ``scope`` (None: the lake is not read)."""

    topic: str
    plan: Plan | None
    scope: ColdScope | None

    @property
    def reads_hot(self) -> bool:
        return self.plan is not None and (self.scope is None or self.scope.hot)


@dataclass(slots=True)
class Read:
    """The merged rows (decoded events columns plus ``_partition``/``_offset``) and what
    each source gave."""

    table: pa.Table
    hot: HotResult | None
    cold: ColdResult | None
    duplicates_dropped: int = 0

    @property
    def complete(self) -> bool:
        return all(r.complete for r in (self.hot, self.cold) if r is not None)

    def summary(self) -> dict[str, Any]:
        """``scanned``/``matched``: both sources together; ``partitions``: Kafka's per
        partition; ``lake``: the lake's counters (when it was read)."""
        doc: dict[str, Any] = self.hot.summary() if self.hot is not None else {
            "scanned": 0, "matched": 0, "undecodable": 0, "partitions": {}}
        if self.cold is not None:
            doc["lake"] = self.cold.summary()
            doc["scanned"] += self.cold.rows_scanned
            doc["matched"] += self.cold.rows_matched
        return {**doc, "duplicates_dropped": self.duplicates_dropped,
                "merged": self.table.num_rows, "complete": self.complete}


def plan_sources(consumer: Consumer, cfg: Config, filters: Filters, source: Source) -> Sources:
    """The hot plan and the lake scope (see the module contract). Raises ReplayError when
    the topic does not exist and ``source`` is ``kafka``."""
    topic = cfg.topics.events
    try:
        plan: Plan | None = make_plan(consumer, topic, filters, cfg.replay)
    except ReplayError:
        if source == "kafka":
            raise
        plan = None
    return Sources(topic, plan, cold_scope(plan, source))


def lake_root(cfg: Config) -> tuple[pafs.FileSystem, str]:
    """(filesystem, base path) of ``[storage] lake``."""
    from pipeline.lake.query import filesystem_for

    return filesystem_for(cfg.storage.lake, cfg.storage.s3_endpoint)


def dry_run_json(cfg: Config, sources: Sources, filters: Filters) -> dict[str, Any]:
    """The plan ``--dry-run`` prints: the hot plan, and the lake objects the run would read
    with their sizes (rows are not estimated: that would open every object)."""
    doc: dict[str, Any] = {**(sources.plan.to_json() if sources.plan else {"topic": None}),
                           "reads_kafka": sources.reads_hot}
    if sources.scope is not None:
        from pipeline.replay.cold import describe_cold, list_cold

        fs, base = lake_root(cfg)
        root = f"{base}/{EVENTS_DIR}"
        listing = list_cold(fs, root, sources.topic, filters, partitions=sources.scope.partitions,
                            offsets_below=sources.scope.offsets_below)
        doc["lake"] = {**sources.scope.to_json(), **describe_cold(fs, root, listing)}
    return doc


def read_sources(consumer: Consumer, cfg: Config, sources: Sources, filters: Filters,
                 decode: Any, *, stop: Callable[[], bool],
                 progress: Callable[[HotResult], None]) -> Read:
    """Read the hot plan and the lake scope of ``sources`` and merge them."""
    from pipeline.replay.cold import read_cold
    from pipeline.replay.seam import merge

    hot = None
    if sources.plan is not None and sources.reads_hot:
        hot = read_plan(consumer, sources.plan, filters, decode, cfg.replay, stop=stop,
                        progress=progress)
    if sources.scope is None:
        return Read(hot.table if hot is not None else pa.table({}), hot, None)
    fs, base = lake_root(cfg)
    cold = read_cold(fs, f"{base}/{EVENTS_DIR}", sources.topic, filters,
                     partitions=sources.scope.partitions,
                     offsets_below=sources.scope.offsets_below, stop=stop)
    merged, dropped = merge(hot.table if hot is not None else pa.table({}), cold.table)
    return Read(merged, hot, cold, dropped)
