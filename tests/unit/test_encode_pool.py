"""EncodePool: worker processes map + encode byte for byte as the in-process path, in order,
and report bad input as errors; Publisher.publish_many with a pool ends every record as
publish() does (same messages, headers, dead letters and accounting)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode
from producers.files import RawRecord, read_file
from producers.pool import EncodeError, EncodePool
from producers.publisher import Publisher

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = (1_700_000_000_123, "test", "test-producer")


def corpus() -> list[RawRecord]:
    records = []
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                records.append(RawRecord(f"{path}:{number}", line, json.loads(line)))
    assert len(records) == 1073
    return records


@pytest.fixture(scope="module")
def pool() -> Iterator[EncodePool]:
    with EncodePool(2, chunk_size=97, window=3) as p:  # odd sizes: chunk and window edges
        yield p


def test_pool_is_byte_identical_to_the_in_process_path_and_keeps_order(pool) -> None:
    records = corpus()
    tasks = [(r.raw, *INGEST, r.location) for r in records]
    got = list(pool.encode(tasks))
    assert len(got) == len(records)
    for record, result in zip(records, got, strict=True):
        meta = IngestMeta(*INGEST, record.location)
        assert result == (event_key(record.value), encode(to_avro(record.value, ingest=meta))), \
            record.location


def test_pool_reports_bad_records_in_place(pool) -> None:
    good = b'{"eventName": "ListBuckets", "awsRegion": "eu-west-1"}'
    tasks = [(good, *INGEST, "a"), (b"[1, 2]", *INGEST, "b"), None, (b'"text"', *INGEST, "c"),
             (good, *INGEST, "d")]
    got = list(pool.encode(tasks))
    assert isinstance(got[0], tuple) and got[0][0] == b"|eu-west-1"
    assert isinstance(got[1], EncodeError) and got[1].error_type == "InvalidRecord"
    assert "JSON object" in got[1].message
    assert got[2] is None
    assert isinstance(got[3], EncodeError) and got[3].error_type == "InvalidRecord"
    assert isinstance(got[4], tuple) and got[4][0] == got[0][0]  # location d, not a


def test_pool_on_empty_input(pool) -> None:
    assert list(pool.encode([])) == []


def test_fork_is_refused() -> None:
    with pytest.raises(ValueError, match="fork"):
        EncodePool(1, start_method="fork")


class FakeProducer:
    """Records produce() calls; poll/flush deliver them all successfully."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, list[Any]]] = []
        self._queue: list[tuple[Any, bytes]] = []

    def produce(self, topic: str, *, value: bytes, key: bytes | None, headers: list[Any],
                on_delivery: Any) -> None:
        self.sent.append((topic, key, value, headers))
        self._queue.append((on_delivery, value))

    def poll(self, _timeout: float = 0) -> int:
        queue, self._queue = self._queue, []
        for callback, value in queue:
            callback(None, value)  # len(msg) is all the publisher reads of a message
        return len(queue)

    def flush(self, _timeout: float = 0) -> int:
        self.poll()
        return 0


def fake_publisher() -> tuple[Publisher, FakeProducer]:
    publisher = Publisher({"bootstrap.servers": "localhost:1"}, events_topic="ev",
                          dlq_topic="dlq", source="test", producer_id="p1",
                          clock_ms=lambda: INGEST[0])
    fake = FakeProducer()
    publisher._producer = fake  # type: ignore[assignment]
    return publisher, fake


def test_publish_many_with_a_pool_equals_publish(pool) -> None:
    bad = [RawRecord("bad:1", b"[1]", [1]), RawRecord("bad:2", b"{", None, "invalid JSON",
                                                      "JSONDecodeError")]
    records = corpus()[:300] + bad + corpus()[300:]
    one, one_fake = fake_publisher()
    for record in records:
        one.publish(record)
    many, many_fake = fake_publisher()
    assert many.publish_many(iter(records), pool, poll_every=100) == len(records)
    assert many_fake.sent == one_fake.sent
    assert many.flush().as_dict() == one.flush().as_dict()
    assert many.stats.dead_lettered == 2 and many.stats.pending == 0


def test_records_of_a_cloudtrail_file_go_through_the_pool_unchanged(pool, tmp_path) -> None:
    """Records of a {"Records": [...]} file carry re-serialized raw JSON; the worker's parse of
    it gives the same event, types and key order included."""
    records = [{"eventTime": "2024-01-01T00:00:00Z", "awsRegion": "eu-west-1", "zz": 1, "aa": 2,
                "recipientAccountId": "123456789012", "requestParameters": {"n": 10**30,
                "f": 0.1, "neg": -0.0, "big": 1e300, "s": "é\u2028😀", "t": True, "x": None}},
               {"eventName": 7, "@timestamp": [1.5, "2"], "eventTime": None}]
    path = tmp_path / "log.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    read = list(read_file(path, 1 << 20))
    assert [r.value for r in read] == records
    one, one_fake = fake_publisher()
    for record in read:
        one.publish(record)
    many, many_fake = fake_publisher()
    many.publish_many(read, pool)
    assert many_fake.sent == one_fake.sent and len(many_fake.sent) == 2


def test_publish_many_without_a_pool_is_publish() -> None:
    records = corpus()[:50]
    one, one_fake = fake_publisher()
    for record in records:
        one.publish(record)
    many, many_fake = fake_publisher()
    assert many.publish_many(records) == 50
    assert many_fake.sent == one_fake.sent


def test_a_pool_needs_the_default_encoding(pool) -> None:
    publisher = Publisher({"bootstrap.servers": "localhost:1"}, events_topic="ev",
                          dlq_topic="dlq", source="t", producer_id="p", encoder=lambda d: b"")
    with pytest.raises(ValueError, match=r"wire\.encode"):
        publisher.publish_many([], pool)
