"""When state can be expired: a timing wheel over event time.

A key is filed under the bucket (``WHEEL_MS`` of event time) of the watermark past which it
can no longer change. Keys are filed again when that moves to another bucket; the old entry
stays, so whoever takes the keys of a bucket checks each one's expiry is still in that
bucket: a key thus expires exactly when the watermark passes the bucket of its current
expiry, whatever stale entries exist (a restored stage has none, and must expire the same
keys at the same time). The cost of expiry is proportional to the keys filed, with no scan of
all state.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from pipeline.rules.state.codec import StateId

WHEEL_MS = 60_000


class ExpiryWheel:
    __slots__ = ("_buckets", "_order")

    def __init__(self) -> None:
        self._buckets: dict[int, list[StateId]] = {}
        self._order: list[int] = []

    def file(self, sid: StateId, expiry_ms: int) -> None:
        """File ``sid`` to be checked once the watermark passes ``expiry_ms``."""
        bucket = expiry_ms // WHEEL_MS
        entries = self._buckets.get(bucket)
        if entries is None:
            entries = self._buckets[bucket] = []
            heapq.heappush(self._order, bucket)
        entries.append(sid)

    def due(self, watermark_ms: int) -> Iterator[tuple[StateId, int]]:
        """Take the (key, bucket) entries of every bucket wholly before the watermark."""
        limit = watermark_ms // WHEEL_MS
        while self._order and self._order[0] < limit:
            bucket = heapq.heappop(self._order)
            for sid in self._buckets.pop(bucket):
                yield sid, bucket


def bucket_of(time_ms: int) -> int:
    return time_ms // WHEEL_MS
