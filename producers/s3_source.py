"""``trailpipe produce cloudtrail-s3 s3://bucket/prefix``: CloudTrail log files from S3.

Only keys in the layout AWS delivers to are events: ``[<trail prefix>/]AWSLogs/[o-<org id>/]``
``<account>/CloudTrail[-Insight]/<region>/YYYY/MM/DD/*.json.gz`` (Insights events included).
Digest files (``CloudTrail-Digest/``) and any other key are skipped and counted, never read.
The URL's prefix is a folder: ``s3://b/logs`` lists ``logs/...`` (not ``logs2/``); it may go
as deep as wanted (``s3://b/AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/2024/``).

Each pass lists the prefix, sorts the keys, and reads every event object that the
:class:`~producers.checkpoint.Checkpoint` does not hold with the same ETag and size. Downloads
run ahead of publishing on a few threads; records are published in key order, each object's
records under one :class:`~producers.publisher.Batch`. An object is checkpointed as soon as Kafka
confirmed all of its records (events and dead letters); at most ``max_inflight_objects`` objects
(and about ``max_inflight_records`` records) are published but not yet checkpointed at any time,
which bounds what a crash makes us send again (at-least-once, never a skip).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.logs import get_logger
from pipeline.progress import IngestProgress
from producers.checkpoint import Checkpoint, ObjectRef
from producers.files import parse_bytes
from producers.publisher import Batch, Publisher

POLL_EVERY_RECORDS = 1000
LOG_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/"
    r"(?P<kind>CloudTrail|CloudTrail-Insight)/(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)/"
    r"(?P<date>\d{4}/\d{2}/\d{2})/(?P<name>[^/]+\.json\.gz)$")
DIGEST_KEY = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?\d{12}/CloudTrail-Digest/")
log = get_logger("producers.s3")


@dataclass(frozen=True, slots=True)
class LogKey:
    """Where a CloudTrail log file sits in the AWS layout."""

    org: str | None
    account: str
    region: str
    date: str  # YYYY/MM/DD
    insight: bool


def parse_log_key(key: str) -> LogKey | None:
    """The layout fields of a CloudTrail log file key, or None when ``key`` is not one."""
    m = LOG_KEY.search(key)
    if m is None:
        return None
    return LogKey(m["org"], m["account"], m["region"], m["date"], m["kind"] != "CloudTrail")


def classify_key(key: str) -> str:
    """``"events"`` for a log file in the AWS layout, ``"digest"`` for a CloudTrail digest
    file, ``"other"`` for anything else (folder markers, stray files)."""
    if parse_log_key(key) is not None:
        return "events"
    return "digest" if DIGEST_KEY.search(key) else "other"


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix as a folder: ``""`` or ending in ``/``).
    Raises ValueError for anything else."""
    m = re.fullmatch(r"s3://([A-Za-z0-9._-]+)(?:/(.*))?", url)  # legacy names allow A-Z, _
    if m is None:
        raise ValueError(f"not an s3://bucket[/prefix] URL: {url!r}")
    prefix = (m[2] or "").lstrip("/")
    return m[1], prefix if not prefix or prefix.endswith("/") else prefix + "/"


@dataclass(slots=True)
class S3IngestResult:
    """What an ingest did. ``files``/``records``/``bytes`` were read and published in this run;
    ``already_done`` event objects were skipped at the first listing because the checkpoint
    held them; ``skipped_digest``/``skipped_other`` count the non-event keys of the latest
    listing; ``vanished`` objects were deleted between listing and reading; ``fetch_errors``
    objects could not be read (not checkpointed: a later pass or run retries them);
    ``delivery_failed`` is set when Kafka failed a record (the ingest stopped there)."""

    files: int = 0
    records: int = 0
    bytes: int = 0
    already_done: int = 0
    skipped_digest: int = 0
    skipped_other: int = 0
    vanished: int = 0
    fetch_errors: int = 0
    passes: int = 0
    delivery_failed: bool = False

    @property
    def ok(self) -> bool:
        """False when something was not read or not delivered (the daemon should exit 1)."""
        return not (self.fetch_errors or self.delivery_failed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_s3(publisher: Publisher, url: str, *, s3_client: Any, checkpoint: Checkpoint,
              max_record_bytes: int, follow: bool = False, poll_interval_s: float = 30,
              stop: threading.Event | None = None, max_inflight_objects: int = 8,
              max_inflight_records: int = 50_000, fetch_threads: int = 4) -> S3IngestResult:
    """Publish every record of every not-yet-checkpointed CloudTrail log file under ``url``.

    Once, or with ``follow`` pass after pass (``poll_interval_s`` apart) until ``stop`` is set.
    Setting ``stop`` ends the run cleanly: no new object is started, the objects in flight are
    confirmed and checkpointed. Returns when done, when stopped, or at the first delivery
    failure (``delivery_failed``; the caller's ``publisher.flush()`` then raises
    DeliveryFailed). Raises ValueError for a bad URL, and botocore errors when the first
    listing fails (later listings in follow mode are logged and retried next interval)."""
    bucket, prefix = parse_s3_url(url)
    stop = stop or threading.Event()
    result = S3IngestResult()
    window = _Window(publisher, checkpoint, max_inflight_objects, max_inflight_records)
    todo = _list_todo(s3_client, bucket, prefix, checkpoint, result)
    with IngestProgress(None if follow else len(todo), "cloudtrail-s3") as progress:
        while True:
            result.passes += 1
            completed = _run_pass(publisher, s3_client, todo, window, progress, result,
                                  max_record_bytes, fetch_threads, stop)
            if not completed or not follow or stop.wait(poll_interval_s):
                break
            try:
                todo = _list_todo(s3_client, bucket, prefix, checkpoint, result)
            except (BotoCoreError, ClientError) as exc:  # transient: try again next interval
                log.error("s3_list_failed", url=url, error=str(exc))
                todo = []
    log.info("s3_ingest_done", url=url, **result.as_dict())
    return result


def _list_todo(s3: Any, bucket: str, prefix: str, checkpoint: Checkpoint,
               result: S3IngestResult) -> list[ObjectRef]:
    """The event objects under the prefix that the checkpoint does not hold, sorted by key;
    counts what is skipped."""
    counts = {"events": 0, "digest": 0, "other": 0}
    todo: list[ObjectRef] = []
    examples: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            kind = classify_key(obj["Key"])
            counts[kind] += 1
            if kind == "other" and len(examples) < 5:
                examples.append(obj["Key"])
            ref = ObjectRef(bucket, obj["Key"], obj["ETag"].strip('"'), int(obj["Size"]))
            if kind == "events" and not checkpoint.is_done(ref):
                todo.append(ref)
    todo.sort(key=lambda r: r.key)
    if result.passes == 0:
        result.already_done = counts["events"] - len(todo)
    result.skipped_digest, result.skipped_other = counts["digest"], counts["other"]
    log.info("s3_listed", bucket=bucket, prefix=prefix, events=counts["events"], todo=len(todo),
             skipped_digest=counts["digest"], skipped_other=counts["other"],
             other_examples=examples)
    return todo


def _run_pass(publisher: Publisher, s3: Any, todo: list[ObjectRef], window: _Window,
              progress: IngestProgress, result: S3IngestResult, max_record_bytes: int,
              fetch_threads: int, stop: threading.Event) -> bool:
    """Publish the objects of one listing; True when all were handled (read or counted as
    vanished/unreadable) and every delivery confirmed and checkpointed."""
    for ref, body in _fetch_ahead(s3, todo, fetch_threads, stop, result):
        batch, count = Batch(), 0
        for record in parse_bytes(body, ref.url, max_record_bytes):
            publisher.publish(record, batch)
            count += 1
            if count % POLL_EVERY_RECORDS == 0:
                publisher.poll()
        window.add(ref, batch, count)
        result.files, result.records = result.files + 1, result.records + count
        result.bytes += len(body)
        progress.advance(files=1, records=count, nbytes=len(body))
        if not window.settle(drain=False):
            result.delivery_failed = True
            return False
    if not window.settle(drain=True):
        result.delivery_failed = True
        return False
    return not stop.is_set()


def _fetch_ahead(s3: Any, todo: list[ObjectRef], threads: int, stop: threading.Event,
                 result: S3IngestResult) -> Iterator[tuple[ObjectRef, bytes]]:
    """(object as read, body) in ``todo`` order, downloading up to ``2 * threads`` ahead.
    Unreadable objects are logged and counted, not yielded. Stops early when ``stop`` is set."""
    pool = ThreadPoolExecutor(max(threads, 1), thread_name_prefix="s3-fetch")
    ahead: list[tuple[ObjectRef, Future[tuple[ObjectRef, bytes] | None]]] = []
    pending = iter(todo)
    try:
        while True:
            while len(ahead) < 2 * max(threads, 1) and (ref := next(pending, None)) is not None:
                ahead.append((ref, pool.submit(_fetch, s3, ref)))
            if not ahead or stop.is_set():
                return
            ref, future = ahead.pop(0)
            try:
                fetched = future.result()
            except (BotoCoreError, ClientError, OSError) as exc:
                result.fetch_errors += 1
                log.error("s3_fetch_failed", object=ref.url, error=str(exc))
                continue
            if fetched is None:
                result.vanished += 1
                log.warning("s3_object_vanished", object=ref.url)
                continue
            yield fetched
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _fetch(s3: Any, ref: ObjectRef) -> tuple[ObjectRef, bytes] | None:
    """The object's body and the ETag/size actually read; None when it no longer exists."""
    try:
        response = s3.get_object(Bucket=ref.bucket, Key=ref.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    body = response["Body"].read()
    etag = str(response.get("ETag", ref.etag)).strip('"')
    return ObjectRef(ref.bucket, ref.key, etag, len(body)), body


@dataclass(slots=True)
class _InFlight:
    ref: ObjectRef
    batch: Batch
    records: int


@dataclass(slots=True)
class _Window:
    """Objects published but not yet checkpointed. An object is checkpointed once Kafka
    confirmed all of its records; :meth:`settle` waits while the window is full."""

    publisher: Publisher
    checkpoint: Checkpoint
    max_objects: int
    max_records: int
    timeout_s: float = 600.0
    commit_interval_s: float = 1.0
    objects: list[_InFlight] = field(default_factory=list)
    last_commit_s: float = field(default_factory=time.monotonic)

    def add(self, ref: ObjectRef, batch: Batch, records: int) -> None:
        self.objects.append(_InFlight(ref, batch, records))

    def _full(self) -> bool:
        return (len(self.objects) >= max(self.max_objects, 1)
                or sum(o.records for o in self.objects) >= self.max_records)

    def settle(self, *, drain: bool) -> bool:
        """Serve delivery reports and checkpoint the confirmed objects — at least every
        ``commit_interval_s``, and whenever the window is full, waiting for Kafka until it is
        not (``drain``: until it is empty). False on a delivery failure or after
        ``timeout_s`` without confirmation; the failed object is not checkpointed."""
        deadline = time.monotonic() + self.timeout_s
        self.publisher.poll(0)
        due = time.monotonic() - self.last_commit_s >= self.commit_interval_s
        while drain or due or self._full():
            if not self._commit_confirmed():
                return False
            settled = not self.objects if drain else not self._full()
            if settled:
                return True
            if time.monotonic() > deadline:
                log.error("s3_delivery_timeout", unconfirmed=[o.ref.url for o in self.objects])
                return False
            self.publisher.poll(0.05)
            due = False
        return True

    def _commit_confirmed(self) -> bool:
        done = [o for o in self.objects if o.batch.pending == 0]
        self.objects = [o for o in self.objects if o.batch.pending != 0]
        confirmed = [(o.ref, o.records) for o in done if not o.batch.errors]
        if confirmed:
            self.checkpoint.mark_done(confirmed)
            self.last_commit_s = time.monotonic()
        failed = [o for o in done if o.batch.errors]
        if failed:
            log.error("s3_delivery_failed", objects=[o.ref.url for o in failed],
                      error=failed[0].batch.errors[0])
        return not failed
