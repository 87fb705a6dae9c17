"""The archiver: ``audit.events.v1`` → zstd Parquet objects in the lake, exactly once.

A Sink on the Runner's batch path (the one poll loop; no processor). The Runner decodes each
poll natively into an Arrow table (undecodable records go to the DLQ and count as processed);
the sink converts it to lake columns on whole columns, buffers the rows per Kafka partition and,
on flush, writes for each Kafka partition one object per Hive partition (account, region,
event-time hour) at
``object_key(account, region, hour, topic, partition, first offset of those rows)``, then a
delivery notice per object, then records the partition's progress; the Runner commits offsets
only after ``flush`` returned. Flushes roll on ``max_records``/``max_bytes``/``max_age_ms``.

Exactly-once, per Kafka partition ``p``, with the owner record of :mod:`pipeline.lake.fencing`
(token, ``next_offset``: all rows below are in the lake; ``pending_end``: a declared range):

1. *Ownership.* Before its first flush after an assignment or a rewind the sink acquires
   ``p`` (a conditional write of a new, larger token). Every later change of the record is a
   put ``if_match`` the ETag this writer last saw, so it fails with
   :class:`~pipeline.lake.fencing.Fenced` once another writer took over: the sink raises, the
   Runner retries and then rewinds.
2. *Declare, write, complete.* A flush of ``p`` first *declares* its range
   ``[next_offset, end)`` (conditional put: the ownership check before the uploads), then
   uploads one object per Hive partition, produces and flushes their delivery notices, then
   *completes* the range (``next_offset = end``, conditional put), and only then returns so the
   Runner may commit. Rows below ``next_offset`` that Kafka redelivers (the commit lags the
   lake: a crash in between, a failed commit) are dropped by the sink.
3. *Same keys and bytes on a re-run.* A range, once declared, is written by whoever owns ``p``
   next, exactly as declared, before any other range: the sink holds the partition's rows (and
   tells the Runner, via ``pending_low_offsets``, not to commit them) until it has re-read the
   whole declared range. An object is a pure function of its rows (key = Hive partition,
   Kafka partition and first offset of those rows; Parquet bytes with no writer, token or clock
   in them), so a re-run after a crash writes the same keys with the same bytes, overwriting
   what a partial upload left; a zombie that lost ``p`` can at most repeat a write of the
   declared range with identical bytes, and its next declaration or completion is fenced.
   Declared ranges of ``p`` are disjoint and consecutive, so each offset is in exactly one
   object. Delivery notices are at-least-once; repeats name the same key and SHA-256.
4. *Failures.* S3 unreachable, AccessDenied, NoSuchBucket, a fencing loss, or notices Kafka did
   not acknowledge: ``flush`` publishes a health record (bucket, key, error) and raises with its
   buffer kept; the Runner retries with backoff within its budget, then discards the buffer,
   rewinds to the committed offsets, pauses and resumes by itself. Nothing is committed that was
   not written.

Limits: the owner records are part of the lake's state (deleting them forgets progress, like
deleting a group's offsets). Two members that both believe they own ``p`` (a rebalance still
settling) fence each other in turn: still exactly-once, only slower. A flush's objects are
built in memory (``max_bytes`` bounds them). A range re-written after a config change
(``zstd_level``, ``row_group_rows``) or a pyarrow upgrade has the same rows but other bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc

from consumers.archiver.notify import Notifier
from consumers.archiver.objects import LakeObject, RowBuffer, build_objects, partition_tables
from pipeline.lake.columns import lake_table
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.fencing import Fencing, Lease
from pipeline.lake.layout import Delivery, owner_key
from pipeline.lake.store import ObjectStore
from pipeline.logs import get_logger
from pipeline.model import Event, TopicPartitionKey

log = get_logger("consumers.archiver.sink")

UploadHook = Callable[[str], None]
"""Called with each object key right after its upload (tests inject crashes here)."""


class ArchiverSink:
    """Buffers rows per Kafka partition; ``flush`` writes them as the module docstring says and
    returns only when objects, notices and progress are durable (rows of a declared range
    not yet fully re-read are held back, see :meth:`held`)."""

    def __init__(self, store: ObjectStore, fencing: Fencing, notifier: Notifier,
                 cfg: ArchiverConfig, *, topic: str, on_upload: UploadHook | None = None
                 ) -> None:
        self.store, self.fencing, self.notifier, self.cfg = store, fencing, notifier, cfg
        self.topic = topic
        self._on_upload = on_upload
        self._rows: dict[TopicPartitionKey, RowBuffer] = {}
        self._leases: dict[TopicPartitionKey, Lease] = {}
        self._built: dict[TopicPartitionKey, tuple[int, list[LakeObject]]] = {}
        self._records = self._bytes = 0
        self._oldest_ms: int | None = None
        self._key: str | None = None  # what a failure is about (object or owner record)
        self._stage = "ownership"
        # Objects and bytes count each upload (a retried range uploads its objects again).
        self.objects_written = self.rows_written = self.bytes_written = 0

    def add(self, item: Any, source: Event | None) -> None:
        """Buffer one decoded batch (event columns + coordinates, see
        :data:`pipeline.model.COORDINATE_COLUMNS`) of the sink's topic."""
        if not isinstance(item, pa.Table):
            raise TypeError(f"the archiver sink takes batch tables, not {type(item).__name__}")
        if item.num_rows == 0:
            return
        for partition, batch_of_p in partition_tables(item):
            size_bytes = pc.sum(batch_of_p["_size_bytes"]).as_py()
            rows = self._rows.get((self.topic, partition))
            if rows is None:
                rows = self._rows[(self.topic, partition)] = RowBuffer(partition)
            rows.append_table(lake_table(batch_of_p), size_bytes)
            self._bytes += size_bytes
        self._records += item.num_rows
        if self._oldest_ms is None:
            self._oldest_ms = time.time_ns() // 1_000_000

    def should_flush(self, now_ms: int) -> bool:
        c = self.cfg
        return (self._records >= c.max_records or self._bytes >= c.max_bytes
                or (self._oldest_ms is not None and now_ms - self._oldest_ms >= c.max_age_ms))

    def flush(self) -> None:
        """Write every buffered partition; on failure publish a health record and raise,
        keeping what is not durable yet for the Runner's retry."""
        rows, objects = self.rows_written, self.objects_written
        try:
            for tp in sorted(self._rows):
                self._flush_partition(tp)
        except Exception as exc:
            log.warning("archiver_flush_failed", stage=self._stage, key=self._key,
                        error=str(exc), error_type=type(exc).__name__)
            self.notifier.failing(exc, key=self._key, stage=self._stage)
            raise
        self._records = sum(r.count() for r in self._rows.values())
        self._bytes = sum(r.size for r in self._rows.values())
        self._oldest_ms = time.time_ns() // 1_000_000 if self._rows else None
        self.notifier.recovered()
        if self.objects_written > objects:
            log.info("archiver_flushed", rows=self.rows_written - rows,
                     objects=self.objects_written - objects, held=self.held())

    def healthcheck(self) -> bool:
        """Startup check that the lake answers (a HEAD of partition 0's owner record); on
        failure a health record is published and False returned. Never raises: the
        daemon starts anyway and backpressures until the lake is reachable."""
        self._key = owner_key(self.topic, 0)
        try:
            self.store.head(self._key)
        except Exception as exc:
            log.error("lake_unreachable", lake=self.store.url, error=str(exc),
                      error_type=type(exc).__name__)
            self.notifier.failing(exc, key=self._key, stage="healthcheck")
            return False
        return True

    def held(self) -> dict[TopicPartitionKey, int]:
        """The first offset of rows still buffered per partition (after a flush: rows held
        until a declared range is complete); the Runner commits nothing from there on."""
        return {tp: rows.first_offset() for tp, rows in self._rows.items() if rows.count()}

    def discard(self) -> None:
        self._rows.clear()
        self._built.clear()
        self._records = self._bytes = 0
        self._oldest_ms = None

    def release(self, partitions: Collection[TopicPartitionKey]) -> None:
        """Forget ownership of ``partitions`` (revoked, lost or rewound): the next flush of
        one of them acquires it anew."""
        for tp in partitions:
            self._leases.pop(tp, None)
            self._built.pop(tp, None)
            self._rows.pop(tp, None)

    def close(self) -> None:
        """Close the notice producer (flushing what it holds)."""
        self.notifier.close()

    def _lease(self, tp: TopicPartitionKey) -> Lease:
        lease = self._leases.get(tp)
        if lease is None:
            self._stage, self._key = "ownership", owner_key(*tp)
            lease = self._leases[tp] = self.fencing.acquire(*tp)
            log.info("partition_acquired", partition=f"{tp[0]}[{tp[1]}]", token=lease.token,
                     next_offset=lease.next_offset, pending_end=lease.pending_end)
        return lease

    def _flush_partition(self, tp: TopicPartitionKey) -> None:
        """Write the partition's buffered rows as consecutive declared ranges; rows of a range
        declared by an earlier owner and not yet fully re-read stay buffered (held)."""
        rows = self._rows[tp]
        while rows.count():
            lease = self._lease(tp)
            if lease.next_offset is not None:
                rows.drop_below(lease.next_offset)  # in the lake already (redelivered)
            if not rows.count() or (lease.pending_end is not None
                                    and rows.last_offset() < lease.pending_end - 1):
                break  # nothing left, or holding until the declared range is re-read
            self._write_range(tp, rows, lease)
        if not rows.count():
            del self._rows[tp]

    def _write_range(self, tp: TopicPartitionKey, rows: RowBuffer, lease: Lease) -> None:
        """Declare (unless an earlier owner did), upload, notify, complete one range."""
        self._stage, self._key = "ownership", lease.key
        if lease.pending_end is None:
            lease = self._leases[tp] = self.fencing.declare(lease, rows.last_offset() + 1)
        end = lease.pending_end
        assert end is not None
        cut = rows.cut_index(end)
        for obj in self._objects(tp, rows, end, cut):
            self._upload(tp, obj)
        self._stage, self._key = "notify", None
        self.notifier.flush()
        self._stage, self._key = "ownership", lease.key
        self._leases[tp] = self.fencing.complete(lease)
        self._built.pop(tp, None)
        self.rows_written += cut
        rows.drop_below(end)

    def _objects(self, tp: TopicPartitionKey, rows: RowBuffer, end: int, cut: int
                 ) -> list[LakeObject]:
        """The objects of the range ending at ``end`` (the first ``cut`` rows), built once
        and reused by the Runner's retries."""
        cached = self._built.get(tp)
        if cached and cached[0] == end:
            return cached[1]
        if cut == 0:
            log.warning("declared_range_not_in_kafka", partition=f"{tp[0]}[{tp[1]}]", end=end)
        objects = build_objects(rows.head(cut), topic=tp[0], partition=tp[1], cfg=self.cfg)
        self._built[tp] = (end, objects)
        return objects

    def _upload(self, tp: TopicPartitionKey, obj: LakeObject) -> None:
        # Unconditional: whoever writes this key writes these same bytes (module docstring).
        self._stage, self._key = "upload", obj.key
        self.store.put(obj.key, obj.data)
        self.objects_written += 1
        self.bytes_written += len(obj.data)
        self.notifier.delivered(_notice(self.store.url, tp, obj))
        if self._on_upload is not None:
            self._on_upload(obj.key)


def _notice(lake: str, tp: TopicPartitionKey, obj: LakeObject) -> Delivery:
    return Delivery(lake=lake, key=obj.key, sha256=hashlib.sha256(obj.data).hexdigest(),
                    size_bytes=len(obj.data), records=obj.records, topic=tp[0],
                    partition=tp[1], first_offset=obj.first_offset,
                    last_offset=obj.last_offset,
                    oldest_event_time_ms=obj.oldest_event_time_ms,
                    newest_event_time_ms=obj.newest_event_time_ms,
                    delivered_at_ms=time.time_ns() // 1_000_000)


def bucket_of(url: str) -> str:
    """The bucket of an ``s3://`` lake URL, or the directory of a ``file://`` one."""
    parsed = urlparse(url)
    return parsed.netloc if parsed.scheme == "s3" else parsed.netloc + parsed.path
