"""Who may write a Kafka partition's objects into the lake: fencing tokens, declared ranges and
lake-side progress, all in one owner record per partition.

The record at :func:`pipeline.lake.layout.owner_key` is JSON::

    {"token": 1764000000123, "owner": "host-4242", "next_offset": 18200,
     "pending_end": 19000, "acquired_at_ms": ..., "updated_at_ms": ...}

* ``token`` grows on every acquisition: a writer taking the partition over (after a
  rebalance, a restart or a rewind) writes ``max(token + 1, now_ms)`` with a conditional put
  (``if_match`` the ETag it read; ``if_none_match`` when there is no record). Two writers can
  never both succeed from the same state, so each token has one writer. (Seeding with the
  clock keeps tokens growing even if a record is ever lost.)
* ``next_offset``: every row of the partition below it is in the lake.
* ``pending_end``: a range ``[next_offset, pending_end)`` declared for writing and not yet
  recorded as written. Whoever owns the partition next must write exactly that range before
  any other, so the objects of a range are the same bytes whoever writes them, however often.

Every change after the acquisition is a put ``if_match`` the ETag the writer itself last saw
(:meth:`Fencing.declare`, :meth:`Fencing.complete`), so it raises :class:`Fenced` as soon as
another writer has taken over. A :class:`Lease` is one writer's view of the record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pipeline.lake.layout import owner_key
from pipeline.lake.store import ObjectStore, PreconditionFailed, StoreError

ATTEMPTS = 5
"""Read-modify-write attempts of an acquisition before it gives up on a contended record."""
_MISSING = ("NoSuchKey", "404", "NotFound")


class Fenced(Exception):
    """Another writer owns the partition now (or its record vanished): stop writing it. The
    Runner rewinds; the partition is acquired again only if Kafka still assigns it here."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Lease:
    """A writer's ownership of one Kafka partition: its token and the record's ETag."""

    topic: str
    partition: int
    token: int
    etag: str
    next_offset: int | None
    pending_end: int | None
    owner: str
    acquired_at_ms: int

    @property
    def key(self) -> str:
        return owner_key(self.topic, self.partition)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Fencing:
    """Ownership operations on ``store`` for the writer named ``owner``."""

    def __init__(self, store: ObjectStore, owner: str,
                 clock_ms: Callable[[], int] = _now_ms) -> None:
        self.store, self.owner, self._clock_ms = store, owner, clock_ms

    def read(self, topic: str, partition: int) -> tuple[dict[str, Any] | None, str | None]:
        """The owner record and its ETag, or (None, None) when there is none."""
        key = owner_key(topic, partition)
        info = self.store.head(key)
        if info is None:
            return None, None
        try:
            return json.loads(self.store.get(key)), info.etag
        except StoreError as exc:
            if exc.code in _MISSING:
                return None, None
            raise

    def acquire(self, topic: str, partition: int) -> Lease:
        """Take the partition over with a new, larger token, keeping its progress and any
        declared range. Raises :class:`Fenced` when other writers keep changing the record
        (after :data:`ATTEMPTS`), StoreError when the store fails."""
        key = owner_key(topic, partition)
        for _ in range(ATTEMPTS):
            record, etag = self.read(topic, partition)
            now = self._clock_ms()
            record = record or {}
            token = max(int(record.get("token", 0)) + 1, now)
            lease = Lease(topic, partition, token, "", record.get("next_offset"),
                          record.get("pending_end"), self.owner, now)
            try:
                return replace(lease, etag=self._put(lease, etag))
            except PreconditionFailed:
                continue  # another writer acquired in between: read again, go above it
        raise Fenced(f"{key}: ownership contended by other writers", key)

    def verify(self, lease: Lease) -> None:
        """Raise :class:`Fenced` unless the record is still the one ``lease`` wrote."""
        info = self.store.head(lease.key)
        if info is None or info.etag != lease.etag:
            raise self._fenced(lease)

    def declare(self, lease: Lease, end: int) -> Lease:
        """Declare ``[next_offset, end)`` as the range about to be written (verifying the
        ownership atomically). Raises :class:`Fenced`, or ValueError if a range is pending."""
        if lease.pending_end is not None:
            raise ValueError(f"{lease.key}: range up to {lease.pending_end} is still pending")
        return self._update(replace(lease, pending_end=end))

    def complete(self, lease: Lease) -> Lease:
        """Record the declared range as written: ``next_offset`` becomes its end."""
        if lease.pending_end is None:
            raise ValueError(f"{lease.key}: no range declared")
        return self._update(replace(lease, next_offset=lease.pending_end, pending_end=None))

    def _update(self, lease: Lease) -> Lease:
        try:
            return replace(lease, etag=self._put(lease, lease.etag))
        except PreconditionFailed as exc:
            raise self._fenced(lease) from exc
        except StoreError as exc:
            if exc.code in _MISSING:  # if_match on a record that is gone
                raise self._fenced(lease) from exc
            raise

    def _put(self, lease: Lease, etag: str | None) -> str:
        doc = {"token": lease.token, "owner": lease.owner, "next_offset": lease.next_offset,
               "pending_end": lease.pending_end, "acquired_at_ms": lease.acquired_at_ms,
               "updated_at_ms": self._clock_ms()}
        data = json.dumps(doc, sort_keys=True).encode()
        if etag is None:
            return self.store.put(lease.key, data, if_none_match=True)
        return self.store.put(lease.key, data, if_match=etag)

    @staticmethod
    def _fenced(lease: Lease) -> Fenced:
        return Fenced(f"{lease.key}: another writer took the partition over, or its record "
                      f"vanished (our token {lease.token})", lease.key)
