"""Avro single-object encoding and its typed decode errors (pure)."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from pipeline.events import (
    CONTENT_TYPE,
    BadMagicError,
    CorruptBodyError,
    IngestMeta,
    InvalidDatum,
    TruncatedBodyError,
    UnknownSchemaError,
    WireFormatError,
    decode,
    default_registry,
    encode,
    from_avro,
    headers_for,
    to_avro,
    writer_of,
)

INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "loc")
RECORD = {"eventName": "ConsoleLogin", "awsRegion": "eu-west-1",
          "eventTime": "2024-01-01T00:00:00Z",
          "userIdentity": {"type": "Root", "accountId": "111122223333"},
          "additionalEventData": {"MFAUsed": "No"}, "readOnly": False}
CURRENT = default_registry().get()


def message() -> bytes:
    return encode(to_avro(RECORD, ingest=INGEST))


def test_layout_is_magic_fingerprint_body() -> None:
    m = message()
    assert m[:2] == b"\xc3\x01"
    assert m[2:10] == CURRENT.fingerprint
    assert writer_of(m) is CURRENT
    body = io.BytesIO(m[10:])
    datum: Any = fastavro.schemaless_reader(body, CURRENT.parsed)
    assert body.tell() == len(m) - 10
    assert from_avro(datum) == RECORD


def test_decode_round_trip_and_writer_choice() -> None:
    v1_1 = default_registry().get(version="1.1")
    datum = to_avro(RECORD, ingest=INGEST)
    m = encode(datum, v1_1)
    assert m[2:10] == v1_1.fingerprint
    assert decode(m)["labels"] == {}  # written with the default of the new field
    assert from_avro(decode(m)) == RECORD


@pytest.mark.parametrize("data", [b"\xc3\x02" + bytes(20), b"{\"eventName\":1}", b"\x00\x00\x00",
                                  b"\x01"])
def test_bad_magic(data: bytes) -> None:
    with pytest.raises(BadMagicError) as err:
        decode(data)
    assert err.value.error_type == "bad_magic"


def test_unknown_fingerprint() -> None:
    m = bytearray(message())
    m[2] ^= 0xFF
    with pytest.raises(UnknownSchemaError, match="fingerprint") as err:
        decode(bytes(m))
    assert err.value.error_type == "unknown_schema"


def test_every_truncation_is_reported_as_truncated() -> None:
    m = message()
    for cut in range(len(m)):
        with pytest.raises(TruncatedBodyError) as err:
            decode(m[:cut])
        assert err.value.error_type == "truncated_body"


def test_trailing_bytes_are_corrupt() -> None:
    with pytest.raises(CorruptBodyError, match="after the Avro body") as err:
        decode(message() + b"\x00")
    assert not isinstance(err.value, TruncatedBodyError)


def test_garbage_body_is_a_wire_format_error() -> None:
    header = message()[:10]
    for body in (b"\xff" * 40, b"\x7f" + b"\x00" * 40, b"\x02\xff\xff\xff\xff\xff\xff\xff\xff\x7f"):
        with pytest.raises(WireFormatError):
            decode(header + body)


def test_encode_rejects_datum_that_does_not_fit() -> None:
    datum = to_avro(RECORD, ingest=INGEST)
    datum["readOnly"] = "true"  # only the mapping may decide where such a value goes
    with pytest.raises(InvalidDatum):
        encode(datum)


def test_headers_name_content_type_schema_and_fingerprint() -> None:
    headers = dict(headers_for())
    assert headers["content-type"] == CONTENT_TYPE.encode()
    assert CONTENT_TYPE == "application/vnd.trailpipe.apicall.v1+avro"
    assert headers["trailpipe.schema.name"] == b"io.trailpipe.audit.ApiCallEvent"
    assert bytes.fromhex(headers["trailpipe.schema.fingerprint"].decode()) == message()[2:10]
