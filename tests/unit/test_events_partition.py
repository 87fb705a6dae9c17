"""Keys and partitions agree with Kafka's Java producer (vectors from Kafka 4.4.0's jar)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.events import (
    IngestMeta,
    decode,
    encode,
    event_key,
    make_key,
    murmur2,
    partition_for,
    partition_for_account,
    to_avro,
)

HERE = Path(__file__).resolve().parent
VECTORS = json.loads((HERE / "vectors" / "murmur2_kafka_4.4.0.json").read_text(encoding="utf-8"))
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1, "test", "unit")


def test_vectors_come_from_kafka() -> None:
    assert VECTORS["kafka_version"] == "4.4.0"
    assert len(VECTORS["vectors"]) >= 200


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["key_hex"][:24] or "empty")
def test_murmur2_and_partition_match_kafka(vector: dict[str, Any]) -> None:
    key = bytes.fromhex(vector["key_hex"])
    if "key_text" in vector:
        assert vector["key_text"].encode() == key
    assert murmur2(key) == vector["murmur2"]
    for n, expected in vector["partitions"].items():
        assert partition_for(key, int(n)) == expected


def test_vectors_cover_every_corpus_key() -> None:
    keys = {bytes.fromhex(v["key_hex"]) for v in VECTORS["vectors"]}
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert event_key(json.loads(line)) in keys


@pytest.mark.parametrize(("record", "key"), [
    ({"recipientAccountId": "111", "awsRegion": "us-east-1", "userIdentity": {"accountId": "222"}},
     b"111|us-east-1"),
    ({"awsRegion": "eu-west-1", "userIdentity": {"accountId": "222"}}, b"222|eu-west-1"),
    ({"recipientAccountId": "", "userIdentity": {"accountId": "222"}}, b"222|"),
    ({"recipientAccountId": None, "userIdentity": "not an object", "awsRegion": "r"}, b"|r"),
    ({"recipientAccountId": 111, "awsRegion": ["r"]}, b"|"),
    ({"recipientAccountId": "ü", "awsRegion": "日本"}, "ü|日本".encode()),
    ({}, b"|"),
])
def test_event_key_and_fallbacks(record: dict[str, Any], key: bytes) -> None:
    assert event_key(record) == key
    # A datum gives the same key as the record it came from.
    assert event_key(decode(encode(to_avro(record, ingest=INGEST)))) == key


def test_corpus_keys_are_the_same_from_record_and_datum() -> None:
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert event_key(to_avro(record, ingest=INGEST)) == event_key(record)


def test_partition_for_account_and_bounds() -> None:
    key = make_key("111122223333", "us-east-1")
    assert key == b"111122223333|us-east-1"
    assert make_key(None, None) == b"|"
    for n in (1, 3, 6, 12, 100):
        assert partition_for_account("111122223333", "us-east-1", n) == partition_for(key, n)
        assert 0 <= partition_for(key, n) < n
    with pytest.raises(ValueError):
        partition_for(key, 0)
