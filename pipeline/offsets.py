"""Offset bookkeeping for the Runner: what was processed, what may be committed. Pure logic.

The committed offset per partition is ``min(last_processed + 1, oldest offset still held by the
processor)``, so a crash re-reads whatever was not yet durable.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pipeline.model import TopicPartitionKey


class OffsetLedger:
    """Per-partition progress since the partition was assigned."""

    def __init__(self) -> None:
        self._next: dict[TopicPartitionKey, int] = {}
        self._committed: dict[TopicPartitionKey, int] = {}

    def processed(self, tp: TopicPartitionKey, offset: int) -> None:
        """Record that ``offset`` is done (output buffered, or dead-lettered)."""
        # The first offset seen is where a rewind goes back to when nothing was committed yet.
        self._committed.setdefault(tp, offset)
        self._next[tp] = offset + 1

    def seen(self, tp: TopicPartitionKey, offset: int) -> None:
        """Record that ``offset`` was polled but not taken (it is read again after a rewind),
        so a rewind seeks back to it even when nothing of ``tp`` was processed yet."""
        self._committed.setdefault(tp, offset)

    def processed_range(self, tp: TopicPartitionKey, first: int, last: int) -> None:
        """Record that offsets ``first``..``last`` of ``tp`` are done (one polled batch)."""
        self._committed.setdefault(tp, first)
        self._next[tp] = last + 1

    def commit_plan(
        self, pending_low: Mapping[TopicPartitionKey, int]
    ) -> dict[TopicPartitionKey, int]:
        """Offsets to commit now: only partitions whose committable offset moved forward."""
        plan: dict[TopicPartitionKey, int] = {}
        for tp, nxt in self._next.items():
            offset = min(nxt, pending_low.get(tp, nxt))
            if offset > self._committed.get(tp, -1):
                plan[tp] = offset
        return plan

    def mark_committed(self, plan: Mapping[TopicPartitionKey, int]) -> None:
        self._committed.update(plan)

    def has_uncommitted(self) -> bool:
        return any(nxt > self._committed.get(tp, -1) for tp, nxt in self._next.items())

    def rewind_targets(self, tps: Collection[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Where to seek each partition so that nothing uncommitted is skipped, and forget the
        processed progress of those partitions (it will be re-read)."""
        targets = {tp: self._committed[tp] for tp in tps if tp in self._committed}
        for tp in tps:
            self._next.pop(tp, None)
        return targets

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        """Drop everything known about these partitions (revoked or lost)."""
        for tp in tps:
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
