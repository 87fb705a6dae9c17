"""The producer's fast paths agree with the plain ones: the fused mapping + encoding
(pipeline.events.fused) with ``encode(to_avro(...))``, byte for byte and error for error, and
orjson parsing (producers.files.parse_json) with ``json.loads``, value for value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.events import IngestMeta, encode, to_avro
from pipeline.events.fused import encode_event, fused_encoder
from producers.files import dumps, loads, parse_json

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = (1_764_201_600_000, "test", "unit-1", "file.jsonl:1")
ODD: list[Any] = [
    {}, {"eventTime": None, "zz": 1, "aa": 2, "errorCode": None, "readOnly": "true",
         "userIdentity": {"x": 1, "type": 5, "arn": "a", "sessionContext": {"attributes": {}}}},
    {"resources": [{"ARN": "a"}, {"bad": 1}], "requestParameters": None,
     "eventTime": "2021-01-01T00:00:00+01:00"},
    {"userIdentity": {"sessionContext": {"webIdFederationData": {"attributes": {"a": 1}}}},
     "eventName": "\ud800", "tlsDetails": [], "managementEvent": None},
    {"eventTime": "1969-12-31T23:59:59.5Z", "x": {"b": 1, "a": 2}, "a": 0, "userIdentity": "r"},
    {"requestParameters": {"n": 10**30, "f": float("nan"), "s": "\ud800", "e": 1e-7}},
]


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
            for line in path.read_bytes().splitlines() if line.strip()]


def two_step(record: Any) -> bytes | str:
    try:
        return encode(to_avro(record, ingest=IngestMeta(*INGEST)))
    except Exception as exc:
        return repr(exc)


def fused(record: Any) -> bytes | str:
    try:
        return encode_event(record, *INGEST)
    except Exception as exc:
        return repr(exc)


def test_the_current_schema_is_fused() -> None:
    assert fused_encoder() is not None


def test_fused_equals_two_step_over_the_corpus_and_odd_records() -> None:
    records = corpus() + ODD
    assert len(records) > 1000
    for record in records:
        assert fused(record) == two_step(record), record


@pytest.mark.parametrize("bad", [[1], "x", {"requestParameters": {1j}}, {"eventName": b"x"}])
def test_fused_raises_what_two_step_raises(bad: Any) -> None:
    assert fused(bad) == two_step(bad) and isinstance(fused(bad), str)


@pytest.mark.parametrize("text", [
    b'{"a": 12345678901234567890, "b": -9223372036854775809}', b'[1, 18446744073709551616]',
    b'{"a": "sdk-12345678901234567890 x", "b": "AROA:12345678901234567890"}',
    b'{"a": NaN, "b": Infinity, "c": 1e400}', b'"\\ud800"', b'{"a": 1, "a": 2, "b": -0.0}',
    b'{"f": [0.1, 1e-7, 1e16, 12345678901234567890.5, 5e-324]}', b'\xef\xbb\xbf{}',
])
def test_parse_json_agrees_with_the_standard_library(text: bytes) -> None:
    try:
        want: Any = json.loads(text.decode("utf-8"))
    except ValueError as exc:
        with pytest.raises(type(exc)):
            loads(text)
        return
    got, by_orjson = parse_json(text)
    assert repr(got) == repr(want)  # types, key order, -0.0 and NaN alike
    back = loads(dumps(got, by_orjson))
    assert repr(back) == repr(want)


def test_corpus_records_parse_by_orjson_and_round_trip_through_raw() -> None:
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                value, by_orjson = parse_json(line)
                assert by_orjson and value == json.loads(line)
                assert loads(dumps(value, by_orjson)) == value
