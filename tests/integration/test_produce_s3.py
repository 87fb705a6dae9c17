"""The S3 source against the real S3 API (moto's server over HTTP) and the real broker: the AWS
layout (organization trail included), digests and stray keys skipped and counted, bad files
dead-lettered with their s3:// location, a durable checkpoint (no re-send, no skip), --follow,
and crashes that re-send only what was not checkpointed."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from kit import end_offsets, read_all

from pipeline.events.mapping import from_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import decode
from pipeline.kafka import producer_config
from producers.checkpoint import Checkpoint
from producers.publisher import Publisher
from producers.s3_source import S3IngestResult, ingest_s3

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "cloudtrail"
PER_FILE = 20
ORG = "o-a1b2c3d4e5"
LAYOUT = [(None, "111122223333", "us-east-1", 1), (None, "111122223333", "us-east-1", 2),
          (None, "111122223333", "eu-west-1", 1), (None, "222233334444", "us-east-1", 1),
          (ORG, "444455556666", "eu-west-1", 1), (ORG, "444455556666", "eu-west-1", 2),
          (ORG, "555566667777", "ap-southeast-2", 3)]


@cache
def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


_cursor = itertools.count()


def log_file(account: str, region: str, count: int) -> tuple[bytes, list[str]]:
    """A gzip CloudTrail log file of corpus records (cycled), each given a fresh eventID and
    the file's account and region, as AWS would deliver them."""
    records = []
    for _ in range(count):
        record = dict(corpus()[next(_cursor) % len(corpus())])
        record.update(eventID=str(uuid.uuid4()), recipientAccountId=account, awsRegion=region)
        records.append(record)
    return gzip.compress(json.dumps({"Records": records}).encode()), [r["eventID"] for r in records]


def log_key(prefix: str, org: str | None, account: str, region: str, day: int,
            kind: str = "CloudTrail") -> str:
    stamp = f"202403{day:02d}T{time.time_ns() % 2400:04d}Z_{uuid.uuid4().hex[:16]}"
    return (f"{prefix}AWSLogs/{org + '/' if org else ''}{account}/{kind}/{region}/2024/03/"
            f"{day:02d}/{account}_{kind}_{region}_{stamp}.json.gz")


def put_log(s3: Any, bucket: str, org: str | None, account: str, region: str, day: int,
            count: int = PER_FILE, prefix: str = "trails/") -> tuple[str, list[str]]:
    key = log_key(prefix, org, account, region, day)
    body, ids = log_file(account, region, count)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key, ids


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def bucket(s3: Any, unique: str) -> Iterator[str]:
    name = f"trail-{unique}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def topics(make_topic: Any) -> tuple[str, str]:
    return make_topic("events", 3), make_topic("dlq", 1)


@pytest.fixture
def trail(s3: Any, bucket: str) -> dict[str, Any]:
    """The realistic bucket: log files, a digest, a stray key, two broken log files, and a log
    file outside the prefix (never listed)."""
    ids = dict(put_log(s3, bucket, *spec) for spec in LAYOUT)
    digest = log_key("trails/", None, "111122223333", "us-east-1", 1, "CloudTrail-Digest")
    s3.put_object(Bucket=bucket, Key=digest, Body=gzip.compress(b'{"digestStartTime": "x"}'))
    s3.put_object(Bucket=bucket, Key="trails/README.txt", Body=b"CloudTrail bucket")
    cut = log_key("trails/", None, "111122223333", "us-east-1", 2)
    s3.put_object(Bucket=bucket, Key=cut, Body=log_file("111122223333", "us-east-1", 5)[0][:-30])
    fake = log_key("trails/", ORG, "444455556666", "eu-west-1", 2)
    s3.put_object(Bucket=bucket, Key=fake, Body=b'{"Records": []}')
    put_log(s3, bucket, None, "999999999999", "us-east-1", 1, prefix="other/")
    return {"ids": ids, "truncated": cut, "not_gzip": fake}


def publisher(kafka: Any, topics: tuple[str, str]) -> Publisher:
    conf = producer_config({"bootstrap.servers": kafka.bootstrap}, {"linger.ms": "5"})
    return Publisher(conf, events_topic=topics[0], dlq_topic=topics[1], source="cloudtrail-s3",
                     producer_id="test")


def ingest(kafka: Any, topics: tuple[str, str], s3: Any, bucket: str, path: Path,
           **kw: Any) -> tuple[S3IngestResult, Publisher]:
    """One run, as the daemon does it: ingest, then flush (raises on delivery failure)."""
    pub = publisher(kafka, topics)
    with Checkpoint(path) as checkpoint:
        result = ingest_s3(pub, f"s3://{bucket}/trails", s3_client=s3, checkpoint=checkpoint,
                           max_record_bytes=1 << 20, **kw)
    pub.flush(30)
    return result, pub


def event_ids(kafka: Any, topic: str, expected: int) -> Counter[str]:
    msgs = read_all(kafka.bootstrap, topic, expected=expected, timeout_s=30)
    return Counter(from_avro(decode(m.value()))["eventID"] for m in msgs)


def total(kafka: Any, topic: str) -> int:
    return sum(end_offsets(kafka.bootstrap, topic, 3).values())


def test_layout_dead_letters_and_checkpoint(kafka, s3, bucket, topics, trail, tmp_path) -> None:
    want = {i for ids in trail["ids"].values() for i in ids}
    result, pub = ingest(kafka, topics, s3, bucket, tmp_path / "cp.db")
    assert (result.files, result.records) == (len(LAYOUT) + 2, len(want) + 2)
    assert (result.skipped_digest, result.skipped_other, result.already_done) == (1, 1, 0)
    assert result.ok and pub.stats.as_dict() | {"bytes_in": 0, "bytes_out": 0} == {
        "read": len(want) + 2, "produced": len(want), "dead_lettered": 2, "failed": 0,
        "pending": 0, "bytes_in": 0, "bytes_out": 0}

    msgs = read_all(kafka.bootstrap, topics[0], expected=len(want), timeout_s=30)
    assert Counter(from_avro(decode(m.value()))["eventID"] for m in msgs) == Counter(want)
    by_key = {key: set(ids) for key, ids in trail["ids"].items()}
    for msg in msgs:
        event = from_avro(decode(msg.value()))
        where = dict(msg.headers())["x-source-location"].decode()
        url, _ = where.split("#Records[")
        assert event["eventID"] in by_key[url.removeprefix(f"s3://{bucket}/")], where
        assert msg.key() == event_key(event) == \
            f"{event['recipientAccountId']}|{event['awsRegion']}".encode()
    dead = {dict(m.headers())["x-source-location"].decode(): dict(m.headers())["x-error-type"]
            for m in read_all(kafka.bootstrap, topics[1], expected=2)}
    assert dead == {f"s3://{bucket}/{trail['truncated']}": b"TruncatedGzipError",
                    f"s3://{bucket}/{trail['not_gzip']}": b"NotGzipError"}

    # Same checkpoint: nothing is read or sent again.
    result, pub = ingest(kafka, topics, s3, bucket, tmp_path / "cp.db")
    assert (result.files, result.already_done, pub.stats.read) == (0, len(LAYOUT) + 2, 0)
    assert total(kafka, topics[0]) == len(want)

    # A new log file: only it is sent.
    _, new_ids = put_log(s3, bucket, ORG, "444455556666", "eu-west-1", 3)
    result, pub = ingest(kafka, topics, s3, bucket, tmp_path / "cp.db")
    assert (result.files, pub.stats.produced) == (1, PER_FILE)
    assert event_ids(kafka, topics[0], len(want) + PER_FILE) == Counter(want | set(new_ids))


def test_follow_picks_up_new_objects(kafka, s3, bucket, topics, tmp_path) -> None:
    _, first = put_log(s3, bucket, None, "111122223333", "us-east-1", 1)
    stop = threading.Event()
    pub = publisher(kafka, topics)
    results: list[S3IngestResult] = []
    with Checkpoint(tmp_path / "cp.db") as checkpoint:
        def run() -> None:
            results.append(ingest_s3(pub, f"s3://{bucket}/trails/", s3_client=s3,
                                     checkpoint=checkpoint, max_record_bytes=1 << 20,
                                     follow=True, poll_interval_s=0.5, stop=stop))
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            assert set(event_ids(kafka, topics[0], PER_FILE)) == set(first)
            _, later = put_log(s3, bucket, ORG, "444455556666", "eu-west-1", 2)
            assert event_ids(kafka, topics[0], 2 * PER_FILE) == Counter(first + later)
        finally:
            stop.set()
            worker.join(30)
        assert not worker.is_alive()
        assert checkpoint.count(bucket) == 2
    [result] = results
    assert result.files == 2 and result.passes >= 2 and result.ok
    pub.flush(10)


class CrashingCheckpoint(Checkpoint):
    """Dies (raises) at its n-th commit: the objects of that commit were delivered to Kafka
    but are not checkpointed, as when the process is killed between the two."""

    def __init__(self, path: Path, crash_at: int) -> None:
        super().__init__(path)
        self.commits, self.crash_at = 0, crash_at

    def mark_done(self, done: Any) -> None:
        self.commits += 1
        if self.commits == self.crash_at:
            raise RuntimeError("simulated crash before the checkpoint commit")
        super().mark_done(done)


def test_crash_between_publish_and_checkpoint(kafka, s3, bucket, topics, tmp_path) -> None:
    keys = dict(put_log(s3, bucket, None, "111122223333", "us-east-1", day) for day in range(1, 6))
    crashing = CrashingCheckpoint(tmp_path / "cp.db", crash_at=3)
    pub = publisher(kafka, topics)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest_s3(pub, f"s3://{bucket}/trails", s3_client=s3, checkpoint=crashing,
                  max_record_bytes=1 << 20, max_inflight_objects=1)
    crashing.close()  # the dead process's lock goes with it
    pub.flush(10)
    in_flight = sorted(keys)[2]  # objects go in key order; the 3rd commit held the 3rd object

    result, _ = ingest(kafka, topics, s3, bucket, tmp_path / "cp.db")
    assert result.files == 3  # the un-checkpointed object and the two never started
    counts = event_ids(kafka, topics[0], 5 * PER_FILE + PER_FILE)
    assert set(counts) == {i for ids in keys.values() for i in ids}  # nothing skipped
    assert {i for i, n in counts.items() if n > 1} == set(keys[in_flight])  # dups: that one only
    assert max(counts.values()) == 2


KILLED_INGEST = """
import sys, time, boto3
from pipeline.kafka import producer_config
from producers.checkpoint import Checkpoint
from producers.publisher import Publisher
from producers.s3_source import ingest_s3
bootstrap, events, dlq, endpoint, url, path = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.meta.events.register("before-call.s3.GetObject", lambda **_: time.sleep(0.1))  # slow it down
pub = Publisher(producer_config({"bootstrap.servers": bootstrap}, {"linger.ms": "5"}),
                events_topic=events, dlq_topic=dlq, source="cloudtrail-s3", producer_id="victim")
ingest_s3(pub, url, s3_client=s3, checkpoint=Checkpoint(path), max_record_bytes=1 << 20,
          fetch_threads=1)
pub.flush(30)
"""


def done_keys(path: Path) -> set[str]:
    """The checkpoint as another process sees it (read-only, without taking the lock)."""
    if not path.exists():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return {key for (key,) in db.execute("SELECT key FROM objects")}
    except sqlite3.DatabaseError:  # being created right now
        return set()


def test_sigkill_mid_ingest_resends_only_unchecked_objects(kafka, s3, s3_endpoint, bucket,
                                                           topics, tmp_path) -> None:
    keys = dict(put_log(s3, bucket, None, "111122223333", region, day)
                for region in ("us-east-1", "eu-west-1") for day in range(1, 16))
    path = tmp_path / "cp.db"
    victim = subprocess.Popen([sys.executable, "-c", KILLED_INGEST, kafka.bootstrap, *topics,
                               s3_endpoint, f"s3://{bucket}/trails", str(path)], cwd=REPO,
                              env={**os.environ, "TRAILPIPE_LOG__FORMAT": "json"},
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(done_keys(path)) < 6 and time.monotonic() < deadline and victim.poll() is None:
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    checkpointed = done_keys(path)
    assert 6 <= len(checkpointed) < len(keys), "the kill did not land mid-ingest"

    result, _ = ingest(kafka, topics, s3, bucket, path)
    assert result.files == len(keys) - len(checkpointed) and result.ok
    sent_before = total(kafka, topics[0]) - result.records
    counts = event_ids(kafka, topics[0], sent_before + result.records)
    assert set(counts) == {i for ids in keys.values() for i in ids}  # every record, ≥ once
    owner = {i: key for key, ids in keys.items() for i in ids}
    duplicated = {owner[i] for i, n in counts.items() if n > 1}
    assert not duplicated & checkpointed  # a checkpointed object is never sent again
    assert len(duplicated) <= 8  # bounded by the in-flight window (max_inflight_objects)
    assert max(counts.values()) <= 2
