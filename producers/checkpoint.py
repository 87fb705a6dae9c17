"""A durable record of the S3 objects whose records Kafka has confirmed, so that a restarted
``cloudtrail-s3`` ingest neither skips nor re-sends a file.

Contract:

- An object is marked done (bucket, key, ETag, size) only after every one of its records got a
  successful delivery report from Kafka (acks=all), i.e. the same guarantee ``flush()`` gives.
  :meth:`Checkpoint.mark_done` commits a group of objects in one SQLite transaction with
  ``synchronous=FULL``: when it returns, the group is on disk (fsync'd), all or nothing.
- Hence **at-least-once, never a skip**: after a crash the objects published but not yet
  marked are read and sent again (duplicates carry the same eventID); an object is never marked
  before Kafka confirmed all of it, so none is skipped.
- :meth:`Checkpoint.is_done` is true only for the same key with the same ETag and size. An object
  that was overwritten (new ETag) is read and sent again in full. CloudTrail never rewrites a
  delivered log file, so this only happens when someone replaced it; sending the new content
  (rather than silently ignoring it) is the safe choice for an audit trail.

Why SQLite rather than a JSON-lines file: a group of objects commits atomically with one fsync
(no torn last line to repair), lookups by key are indexed (buckets hold millions of log files,
nothing is loaded into memory), a changed ETag is an in-place upsert (no compaction step), and
it is in the standard library. One writer per file: a second ingest on the same checkpoint fails
fast with :class:`CheckpointLocked` instead of double-sending. Keep the file on a local disk
(SQLite's WAL mode does not work over network file systems).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    records INTEGER NOT NULL,
    done_at_ms INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO objects (bucket, key, etag, size, records, done_at_ms) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (bucket, key) DO UPDATE SET etag = excluded.etag, size = excluded.size,
    records = excluded.records, done_at_ms = excluded.done_at_ms
"""


class CheckpointLocked(RuntimeError):
    """Another process holds this checkpoint file."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One S3 object version as read: ``etag`` without the surrounding quotes."""

    bucket: str
    key: str
    etag: str
    size: int

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Checkpoint:
    """The set of objects fully delivered to Kafka, in a SQLite file at ``path`` (created with
    its parent directories). Holds an exclusive lock on ``<path>.lock`` until :meth:`close`.
    May be created in one thread and used in another, but by one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock(self.path)
        created = not self.path.exists()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._lock_file.close()
            raise
        if created:
            _fsync_dir(self.path.parent)

    def is_done(self, ref: ObjectRef) -> bool:
        """True when this key was marked done with the same ETag and size."""
        row = self._db.execute("SELECT etag, size FROM objects WHERE bucket = ? AND key = ?",
                               (ref.bucket, ref.key)).fetchone()
        return row is not None and (row[0], row[1]) == (ref.etag, ref.size)

    def mark_done(self, done: Iterable[tuple[ObjectRef, int]]) -> None:
        """Durably record ``(object, records sent)`` pairs in one transaction; on return they
        survive a crash or power loss. Call only after Kafka confirmed every record."""
        now_ms = time.time_ns() // 1_000_000
        rows = [(r.bucket, r.key, r.etag, r.size, n, now_ms) for r, n in done]
        if not rows:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_UPSERT, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def count(self, bucket: str | None = None) -> int:
        """How many objects are marked done (in ``bucket``, or in all)."""
        if bucket is None:
            row = self._db.execute("SELECT count(*) FROM objects").fetchone()
        else:
            row = self._db.execute("SELECT count(*) FROM objects WHERE bucket = ?",
                                   (bucket,)).fetchone()
        return int(row[0])

    def keys(self, bucket: str) -> dict[str, tuple[str, int]]:
        """key → (etag, size) of every object marked done in ``bucket`` (for tools and tests)."""
        rows = self._db.execute("SELECT key, etag, size FROM objects WHERE bucket = ?",
                                (bucket,))
        return {key: (etag, size) for key, etag, size in rows}

    def close(self) -> None:
        """Close the database and release the lock; safe to call twice."""
        with contextlib.suppress(sqlite3.ProgrammingError):
            self._db.close()
        self._lock_file.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _lock(path: Path) -> IO[bytes]:
    """An exclusive, non-blocking lock on ``<path>.lock``, released when the handle closes
    (also when the process dies)."""
    handle = open(path.with_name(path.name + ".lock"), "ab")  # noqa: SIM115 - held open
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise CheckpointLocked(f"checkpoint {path} is in use by another process") from None
    return handle


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
