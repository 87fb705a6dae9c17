"""Confluent wire framing (00 + 4-byte id + Avro body) next to our single-object encoding.

Pure: the codec round trips run against confluent-kafka's in-process mock registry (mock://).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from pipeline.events import IngestMeta, encode, from_avro, to_avro
from pipeline.events.confluent import (
    ConfluentCodec,
    is_confluent_framed,
    schema_id_of,
    schema_text,
    subject_for,
)
from pipeline.events.errors import (
    BadMagicError,
    InvalidDatum,
    TruncatedBodyError,
    UnknownSchemaError,
)

INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "file.jsonl:1")
RECORD: dict[str, Any] = {
    "eventVersion": "1.08",
    "eventTime": "2024-05-01T12:00:00Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "GetObject",
    "awsRegion": "eu-west-1",
    "recipientAccountId": "123456789012",
    "readOnly": True,
    "requestParameters": {"bucketName": "b", "key": "k", "n": 1, "f": 1.0},
    "@timestamp": "kept in unmodelled",
}


def same(a: Any, b: Any) -> bool:
    """Equal with types (1, 1.0 and True differ), via a canonical JSON dump."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_framing_detection() -> None:
    framed = b"\x00" + struct.pack(">I", 7) + b"\x02"
    assert is_confluent_framed(framed)
    assert is_confluent_framed(framed[:5])  # a complete header
    assert not is_confluent_framed(framed[:4])
    assert not is_confluent_framed(b"")
    assert not is_confluent_framed(encode(to_avro(RECORD, ingest=INGEST)))  # C3 01 ...
    assert not is_confluent_framed(b"\x01" + bytes(16) + b"\x02")  # GUID framing: not ours


def test_schema_id_is_big_endian() -> None:
    assert schema_id_of(b"\x00\x00\x00\x01\x02rest") == 258
    assert schema_id_of(b"\x00\xff\xff\xff\xff") == 2**32 - 1


@pytest.mark.parametrize(("data", "error"), [
    (b"", TruncatedBodyError),
    (b"\x00\x00\x01", TruncatedBodyError),
    (b"\xc3\x01" + bytes(8), BadMagicError),
    (b"\x01" + bytes(16), BadMagicError),
])
def test_schema_id_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        schema_id_of(data)


def test_subject_and_topic() -> None:
    assert subject_for("audit.api-calls") == "audit.api-calls-value"
    codec = ConfluentCodec("mock://unit", "audit.api-calls-value")
    assert codec.topic == "audit.api-calls"
    assert ConfluentCodec.for_topic("mock://unit", "t1").subject == "t1-value"


def test_mock_round_trip_is_lossless() -> None:
    codec = ConfluentCodec.for_topic("mock://unit", "audit")
    data = codec.encode(to_avro(RECORD, ingest=INGEST))
    assert is_confluent_framed(data)
    assert codec.schema_id is not None and schema_id_of(data) == codec.schema_id
    datum = codec.decode(data)
    assert same(from_avro(datum), RECORD)
    assert datum["ingest"]["producerId"] == "unit-1"


def test_body_is_plain_avro_of_the_same_schema() -> None:
    """Past the 5-byte header the bytes equal our encoder's body (same schema, same datum)."""
    datum = to_avro(RECORD, ingest=INGEST)
    codec = ConfluentCodec.for_topic("mock://unit", "audit")
    assert codec.encode(datum)[5:] == encode(datum)[10:]


def test_registered_text_is_the_schema_file() -> None:
    codec = ConfluentCodec.for_topic("mock://unit", "audit")
    codec.register()
    assert codec.client.get_latest_version("audit-value").schema.schema_str == schema_text("1")


def test_decode_rejects_single_object_encoding_without_a_registry_call() -> None:
    codec = ConfluentCodec.for_topic("http://127.0.0.1:9/never-contacted", "audit")
    with pytest.raises(BadMagicError):
        codec.decode(encode(to_avro(RECORD, ingest=INGEST)))


def test_unknown_schema_id() -> None:
    data = ConfluentCodec.for_topic("mock://a", "audit").encode(to_avro(RECORD, ingest=INGEST))
    other = ConfluentCodec.for_topic("mock://b", "audit")  # a separate (empty) mock registry
    with pytest.raises(UnknownSchemaError):
        other.decode(data)


def test_truncated_body() -> None:
    codec = ConfluentCodec.for_topic("mock://unit", "audit")
    data = codec.encode(to_avro(RECORD, ingest=INGEST))
    with pytest.raises(TruncatedBodyError):
        codec.decode(data[: len(data) // 2])


def test_datum_that_does_not_fit() -> None:
    codec = ConfluentCodec.for_topic("mock://unit", "audit")
    datum = to_avro(RECORD, ingest=INGEST)
    datum["eventTimeStatus"] = "NOT_A_SYMBOL"
    with pytest.raises(InvalidDatum):
        codec.encode(datum)
