"""The engine of ``lake compact``: plan the units of a date, run each through the protocol
documented (with its crash analysis) in :mod:`pipeline.lake.compact.model`, and resume the units an
earlier run left unfinished."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pyarrow as pa

from pipeline.lake.compact.merge import (
    describe,
    estimate_bytes,
    merge,
    read_parquet,
    split_sizes,
    to_parquet,
)
from pipeline.lake.compact.model import CompactConfig, PartitionResult, Summary
from pipeline.lake.compact.notify import NoticeError, Notices
from pipeline.lake.compact.plan import (
    INTENTS_DIR,
    CompactionError,
    Intent,
    Unit,
    date_partitions,
    hour_partitions,
    output_key,
    parse_file,
    partition_of,
    plan_partition,
)
from pipeline.lake.digest.model import Compaction
from pipeline.lake.digest.verify import event_hour
from pipeline.lake.layout import HOUR_MS, Delivery
from pipeline.lake.store import ObjectInfo, ObjectStore, PreconditionFailed, StoreError
from pipeline.logs import get_logger

log = get_logger("pipeline.lake.compact.model")
Clock = Callable[[], int]
Hook = Callable[[str, str], None]
"""Called with (stage, intent key) after each stage of :data:`~pipeline.lake.compact.model.STAGES`;
tests raise from it to simulate a crash there."""
_ABSENT = ("NoSuchKey", "404", "NotFound")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Compactor:
    """Compacts the partitions of one date in ``store``; notices go to ``notices`` (may be
    None for dry runs only)."""

    def __init__(self, store: ObjectStore, notices: Notices | None, cfg: CompactConfig, *,
                 clock: Clock = _now_ms, hook: Hook | None = None, workers: int = 8) -> None:
        self.store, self.notices, self.cfg = store, notices, cfg
        self._clock, self._hook = clock, hook or (lambda _stage, _key: None)
        self._workers = workers

    def run(self, date: str, account: str | None = None, *, dry_run: bool = False) -> Summary:
        """Compact (or, with ``dry_run``, plan without writing) every partition of ``date``.
        Failures of a partition are in the summary; raises StoreError when listing fails."""
        summary = Summary(date, dry_run)
        intents = self._intents(date, account, summary)
        listed = hour_partitions(info for prefix in date_partitions(self.store, date, account)
                                 for info in self.store.list(prefix))
        for part in sorted(set(listed) | set(intents)):
            result = PartitionResult(part, len(listed.get(part, [])))
            try:
                self._partition(result, listed.get(part, []), intents.get(part, []), dry_run)
            except (CompactionError, StoreError, NoticeError) as exc:
                result.status = f"failed: {exc}"
                summary.errors.append(f"{part}: {exc}")
                log.error("compaction_failed", partition=part, error=str(exc))
            summary.partitions.append(result)
        return summary

    def _intents(self, date: str, account: str | None,
                 summary: Summary) -> dict[str, list[Intent]]:
        """Units left unfinished by earlier runs, by partition."""
        acc = f"account={quote(account, safe='')}" if account else None
        out: dict[str, list[Intent]] = {}
        for info in self.store.list(f"{INTENTS_DIR}/"):
            parts = info.key.split("/")
            if len(parts) != 6 or parts[3] != f"date={date}" or acc not in (None, parts[1]):
                continue
            try:
                intent = Intent.from_json(self.store.get(info.key))
            except (ValueError, KeyError, TypeError, StoreError) as exc:
                summary.errors.append(f"{info.key}: unreadable intent: {exc}")
                continue
            if intent.key != info.key:
                summary.errors.append(f"{info.key}: intent names another unit ({intent.key})")
                continue
            out.setdefault(intent.partition, []).append(intent)
        return out

    def _partition(self, result: PartitionResult, infos: list[ObjectInfo],
                   intents: list[Intent], dry_run: bool) -> None:
        present = {i.key for i in infos}
        for intent in intents:
            result.replaced += sum(k in present for k in intent.replaced)
            result.written += sum(k not in present for k in intent.by)
            result.rows_in += intent.rows_in
            result.rows_out += intent.rows_out
            result.resumed += 1
            if not dry_run:
                log.info("compaction_resumed", intent=intent.key)
                self._finish(intent, None)
        if self._too_recent(result.partition):
            result.status = "too recent"
        else:
            claimed = {k for i in intents for k in (*i.replaced, *i.by)}
            files = [f for f in map(parse_file, infos) if f is not None and f.key not in claimed]
            for unit in plan_partition(result.partition, files, small_bytes=self.cfg.small_bytes,
                                       min_objects=self.cfg.min_objects,
                                       max_input_bytes=self.cfg.max_input_bytes):
                self._unit(unit, result, dry_run)
        changed = result.replaced or result.written
        if changed:
            result.status = "would compact" if dry_run else "compacted"
        if dry_run or not changed:
            result.objects_after = result.objects_before - result.replaced + result.written
        else:
            result.objects_after = sum(partition_of(i.key) == result.partition
                                       for i in self.store.list(f"{result.partition}/"))

    def _too_recent(self, partition: str) -> bool:
        hour = event_hour(f"{partition}/")
        return hour is not None and hour + HOUR_MS + self.cfg.settle_ms > self._clock()

    def _unit(self, unit: Unit, result: PartitionResult, dry_run: bool) -> None:
        """Merge a planned unit, record its intent and finish it."""
        merged = merge(self._get_all([f.key for f in unit.inputs]))
        rows = merged.table.num_rows
        sizes = split_sizes(rows, estimate_bytes(unit.input_bytes, merged.rows_in, rows),
                            self.cfg.target_object_bytes)
        if len(sizes) >= len(unit.inputs) and rows == merged.rows_in:
            return  # as many objects again and no duplicate: nothing to gain
        intent = Intent(self.store.url, unit.partition, unit.topic,
                        tuple(f.key for f in unit.inputs),
                        tuple((output_key(unit.partition, unit.topic, unit.id, n), count)
                              for n, count in enumerate(sizes)),
                        merged.rows_in, self._clock())
        result.replaced += len(intent.replaced)
        result.written += len(intent.outputs)
        result.rows_in += merged.rows_in
        result.rows_out += rows
        if dry_run:
            return
        table: pa.Table | None = merged.table
        try:
            self.store.put(intent.key, intent.to_json(), if_none_match=True)
        except PreconditionFailed:  # another run got here first: finish what it recorded
            existing = Intent.from_json(self.store.get(intent.key))
            table = table if existing.outputs == intent.outputs else None
            intent = existing
        self._hook("intent", intent.key)
        self._finish(intent, table)
        log.info("compacted", partition=unit.partition, replaced=len(intent.replaced),
                 written=len(intent.outputs), rows_in=merged.rows_in, rows_out=rows)

    def _finish(self, intent: Intent, table: pa.Table | None) -> None:
        """Steps 1-3 of the protocol for a recorded unit (``table``: its merged rows, when
        at hand)."""
        if self.notices is None:
            raise CompactionError("no notice producer: only a dry run can do without one")
        deliveries = self._outputs(intent, table)
        self._hook("written", intent.key)
        for d in deliveries:
            self.notices.publish(d.key, d.to_json())
        self.notices.flush()
        self._hook("announced", intent.key)
        notice = Compaction(self.store.url, intent.replaced, intent.by, self._clock())
        self.notices.publish(intent.key, notice.to_json())
        self.notices.flush()
        self._hook("recorded", intent.key)
        for key in intent.replaced:
            self.store.delete(key)
        self._hook("deleted", intent.key)
        self.store.delete(intent.key)

    def _outputs(self, intent: Intent, table: pa.Table | None) -> list[Delivery]:
        """Write the outputs that do not exist yet; the notice of every output."""
        if table is None and any(self.store.head(k) is None for k in intent.by):
            table = self._rebuild(intent)
        out: list[Delivery] = []
        start = 0
        for key, records in intent.outputs:
            part = table.slice(start, records) if table is not None else None
            start += records
            out.append(self._output(intent, key, records, part))
        return out

    def _output(self, intent: Intent, key: str, records: int, part: pa.Table | None
                ) -> Delivery:
        if part is not None:
            data = to_parquet(part, topic=intent.topic, unit=intent.id,
                              zstd_level=self.cfg.zstd_level,
                              row_group_rows=self.cfg.row_group_rows)
            try:
                self.store.put(key, data, if_none_match=True)
                return describe(self.store.url, key, data, part, topic=intent.topic,
                                delivered_at_ms=self._clock())
            except PreconditionFailed:
                pass  # written by an interrupted run: describe what is there
        data = self.store.get(key)
        existing = read_parquet(data)
        if existing.num_rows != records:
            raise CompactionError(f"{key} exists with {existing.num_rows} rows, its intent "
                                  f"{intent.key} says {records}")
        return describe(self.store.url, key, data, existing, topic=intent.topic,
                        delivered_at_ms=self._clock())

    def _rebuild(self, intent: Intent) -> pa.Table:
        """The merged rows of an interrupted unit, from its replaced objects (all still there:
        deletion starts only once every output exists)."""
        try:
            merged = merge(self._get_all(intent.replaced))
        except StoreError as exc:
            if exc.code not in _ABSENT:
                raise
            raise CompactionError(f"{intent.key}: an output and a replaced object are both "
                                  f"missing ({exc}); left for an operator") from exc
        if merged.table.num_rows != intent.rows_out:
            raise CompactionError(f"{intent.key}: the replaced objects now hold "
                                  f"{merged.table.num_rows} rows, the intent says "
                                  f"{intent.rows_out}")
        return merged.table

    def _get_all(self, keys: Sequence[str]) -> list[bytes]:
        with ThreadPoolExecutor(max_workers=max(1, min(self._workers, len(keys)))) as pool:
            return list(pool.map(self.store.get, keys))
