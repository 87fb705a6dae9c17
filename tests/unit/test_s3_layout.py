"""The S3 source without I/O: which keys are CloudTrail log files, URL parsing, and the ingest
loop's bookkeeping against fakes (checkpoint only after confirmation, bounded window)."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from producers.checkpoint import Checkpoint
from producers.files import RawRecord
from producers.publisher import Batch
from producers.s3_source import LogKey, classify_key, ingest_s3, parse_log_key, parse_s3_url

NAME = "111122223333_CloudTrail_us-east-1_20240301T0005Z_abcDEF123.json.gz"


@pytest.mark.parametrize(("key", "expected"), [
    (f"AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/{NAME}",
     LogKey(None, "111122223333", "us-east-1", "2024/03/01", False)),
    (f"trails/prod/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/eu-west-1/2024/12/31/{NAME}",
     LogKey("o-a1b2c3d4e5", "111122223333", "eu-west-1", "2024/12/31", False)),
    (f"x/AWSLogs/111122223333/CloudTrail/us-gov-west-1/2024/03/01/{NAME}",
     LogKey(None, "111122223333", "us-gov-west-1", "2024/03/01", False)),
    (f"AWSLogs/111122223333/CloudTrail-Insight/ap-southeast-2/2024/03/01/{NAME}",
     LogKey(None, "111122223333", "ap-southeast-2", "2024/03/01", True)),
])
def test_log_file_keys(key: str, expected: LogKey) -> None:
    assert parse_log_key(key) == expected
    assert classify_key(key) == "events"


@pytest.mark.parametrize(("key", "kind"), [
    ("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/"
     "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T010000Z.json.gz", "digest"),
    ("p/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/d.json.gz",
     "digest"),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/", "other"),  # folder marker
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/notes.txt", "other"),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/a.json", "other"),
    ("AWSLogs/11112222333/CloudTrail/us-east-1/2024/03/01/a.json.gz", "other"),  # 11 digits
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/3/1/a.json.gz", "other"),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/x/a.json.gz", "other"),
    ("myAWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/a.json.gz", "other"),
    ("AWSLogs/111122223333/elasticloadbalancing/us-east-1/2024/03/01/a.json.gz", "other"),
    ("README.md", "other"),
])
def test_other_keys(key: str, kind: str) -> None:
    assert parse_log_key(key) is None
    assert classify_key(key) == kind


def test_s3_urls() -> None:
    assert parse_s3_url("s3://my-trail") == ("my-trail", "")
    assert parse_s3_url("s3://my-trail/") == ("my-trail", "")
    assert parse_s3_url("s3://my-trail/logs") == ("my-trail", "logs/")
    assert parse_s3_url("s3://my.trail/a/AWSLogs/") == ("my.trail", "a/AWSLogs/")
    assert parse_s3_url("s3://Legacy_Bucket/x") == ("Legacy_Bucket", "x/")
    for bad in ("my-trail/logs", "s3:/x/y", "https://s3.amazonaws.com/b", "s3://"):
        with pytest.raises(ValueError, match="not an s3"):
            parse_s3_url(bad)


class FakeS3:
    """list_objects_v2 (two pages) and get_object over a dict."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.gets: list[str] = []

    def get_paginator(self, _name: str) -> Any:
        outer = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                keys = sorted(k for k in outer.objects if k.startswith(Prefix))
                rows = [{"Key": k, "ETag": f'"{hash(outer.objects[k])}"',
                         "Size": len(outer.objects[k])} for k in reversed(keys)]
                return [{"Contents": rows[:2]}, {"Contents": rows[2:]}, {}]
        return Paginator()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.gets.append(Key)
        body = self.objects[Key]

        class Body:
            def read(self) -> bytes:
                return body
        return {"Body": Body(), "ETag": f'"{hash(body)}"'}


class FakePublisher:
    """Confirms records only when polled; records what was unconfirmed-and-unmarked."""

    def __init__(self, checkpoint: Checkpoint, fail_key: str | None = None) -> None:
        self.checkpoint = checkpoint
        self.fail_key = fail_key
        self.sent: list[str] = []
        self.unconfirmed: list[tuple[RawRecord, Batch]] = []

    def publish(self, record: RawRecord, batch: Batch | None = None) -> None:
        assert batch is not None
        batch.add()
        self.sent.append(record.location)
        self.unconfirmed.append((record, batch))

    def poll(self, _timeout_s: float = 0) -> None:
        for record, batch in self.unconfirmed:
            failed = self.fail_key is not None and self.fail_key in record.location
            batch._delivered(False, "boom" if failed else None)  # type: ignore[arg-type]
        self.unconfirmed = []


def log_file(n: int) -> bytes:
    records = [{"eventID": f"{n}-{i}", "eventName": "GetObject"} for i in range(3)]
    return gzip.compress(json.dumps({"Records": records}).encode())


def layout(count: int) -> dict[str, bytes]:
    objects = {f"t/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/{n:03d}.json.gz":
               log_file(n) for n in range(count)}
    objects["t/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/d.json.gz"] = b"{}"
    objects["t/notes.txt"] = b"hello"
    objects["elsewhere/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/x.json.gz"] = b""
    return objects


def run(s3: FakeS3, publisher: FakePublisher, checkpoint: Checkpoint, **kw: Any) -> Any:
    return ingest_s3(publisher, "s3://bkt/t", s3_client=s3, checkpoint=checkpoint,  # type: ignore[arg-type]
                     max_record_bytes=1 << 20, **kw)


def test_sorted_order_skips_counted_and_resume(tmp_path: Path) -> None:
    s3 = FakeS3(layout(7))
    with Checkpoint(tmp_path / "cp.db") as cp:
        result = run(s3, FakePublisher(cp), cp, max_inflight_objects=2)
        assert (result.files, result.records, result.skipped_digest, result.skipped_other) == \
            (7, 21, 1, 1)
        assert s3.gets == sorted(s3.gets) and len(s3.gets) == 7
        assert cp.count("bkt") == 7
        again = FakePublisher(cp)
        result = run(s3, again, cp)
        assert (result.files, result.already_done, again.sent) == (0, 7, [])


def test_window_bounds_unmarked_objects(tmp_path: Path) -> None:
    """Whenever a record is published, at most max_inflight_objects objects have records sent
    and are not yet checkpointed (that is what a crash can make us send twice)."""
    s3 = FakeS3(layout(12))
    with Checkpoint(tmp_path / "cp.db") as cp:
        publisher = FakePublisher(cp)
        worst = 0
        original = publisher.publish

        def watching(record: RawRecord, batch: Batch | None = None) -> None:
            nonlocal worst
            original(record, batch)
            keys = {loc.split("#")[0].removeprefix("s3://bkt/") for loc in publisher.sent}
            worst = max(worst, len(keys - set(cp.keys("bkt"))))
        publisher.publish = watching  # type: ignore[method-assign]
        run(s3, publisher, cp, max_inflight_objects=3)
        assert worst == 3 and cp.count() == 12


def test_a_delivery_failure_stops_and_is_not_checkpointed(tmp_path: Path) -> None:
    s3 = FakeS3(layout(6))
    with Checkpoint(tmp_path / "cp.db") as cp:
        result = run(s3, FakePublisher(cp, fail_key="/003.json.gz"), cp, max_inflight_objects=1)
        assert result.delivery_failed and not result.ok
        assert sorted(cp.keys("bkt")) == [k for k in sorted(s3.objects)
                                        if k.endswith(("000.json.gz", "001.json.gz",
                                                       "002.json.gz"))]


def test_stop_ends_a_follow_run(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with Checkpoint(tmp_path / "cp.db") as cp:
        result = run(FakeS3(layout(2)), FakePublisher(cp), cp, follow=True, stop=stop)
    assert result.passes == 1


def test_follow_survives_a_failed_listing_and_picks_up_new_objects(tmp_path: Path) -> None:
    from botocore.exceptions import EndpointConnectionError

    stop = threading.Event()
    s3 = FakeS3(layout(2))
    listings = 0
    paginator = s3.get_paginator

    def flaky(name: str) -> Any:
        nonlocal listings
        listings += 1
        if listings == 2:
            raise EndpointConnectionError(endpoint_url="http://s3")
        if listings == 3:
            s3.objects["t/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/02/new.json.gz"] = \
                log_file(99)
        if listings == 4:
            stop.set()
        return paginator(name)
    s3.get_paginator = flaky  # type: ignore[method-assign]
    with Checkpoint(tmp_path / "cp.db") as cp:
        publisher = FakePublisher(cp)
        result = run(s3, publisher, cp, follow=True, poll_interval_s=0.01, stop=stop)
        assert (result.files, result.passes, cp.count("bkt")) == (3, 4, 3)
        assert [loc for loc in publisher.sent if "new.json.gz" in loc] == [
            f"s3://bkt/t/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/02/new.json.gz"
            f"#Records[{i}]" for i in range(3)]
