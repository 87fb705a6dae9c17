"""CloudTrail JSON -> Avro datum -> bytes -> datum -> CloudTrail JSON is lossless (pure)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from pipeline.events import (
    IngestMeta,
    InvalidDatum,
    InvalidRecord,
    decode,
    default_registry,
    effective_time_ms,
    encode,
    from_avro,
    ingest_of,
    to_avro,
)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
SOURCES = sorted(p.parent.name for p in CORPUS.glob("*/records.jsonl"))
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "file.jsonl:1")


def assert_same(got: Any, want: Any, path: str = "$") -> None:
    """Equality that also requires equal types (Python's 1 == 1.0 == True is not enough)."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert got.keys() == want.keys(), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), path
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"
        if isinstance(want, float):
            assert math.copysign(1, got) == math.copysign(1, want), f"{path}: sign of zero"


def round_trip(record: Any) -> dict[str, Any]:
    return from_avro(decode(encode(to_avro(record, ingest=INGEST))))


def test_corpus_is_there() -> None:
    assert len(SOURCES) >= 11, f"expected the shared corpus at {CORPUS}"


@pytest.mark.parametrize("source", SOURCES)
def test_corpus_round_trip_is_lossless(source: str) -> None:
    path = CORPUS / source / "records.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    v1_1 = default_registry().get(version="1.1")
    checked = 0
    for lineno, line in enumerate(lines, start=1):
        original = json.loads(line)
        pristine = copy.deepcopy(original)
        datum = to_avro(original, ingest=INGEST)
        assert_same(original, pristine, f"{source}:{lineno} (to_avro mutated its input)")
        message = encode(datum)
        assert_same(from_avro(decode(message)), original, f"{source}:{lineno}")
        # Readers on the additive v1.1 get the same record back.
        assert_same(from_avro(decode(message, reader=v1_1)), original, f"{source}:{lineno}@v1.1")
        if original.get("eventTime") is None:
            assert datum["eventTimeStatus"] == "MISSING" and datum["eventTimeMs"] is None
        checked += 1
    assert checked == len(lines) == path.read_bytes().count(b"\n")


def test_booleans_written_as_strings_stay_strings() -> None:
    record = {"readOnly": "true", "managementEvent": "False", "sessionCredentialFromConsole": True,
              "userIdentity": {"sessionContext": {"attributes": {"mfaAuthenticated": False}}}}
    datum = to_avro(record, ingest=INGEST)
    assert "readOnly" not in datum and "managementEvent" not in datum  # sparse: absent = null
    assert json.loads(datum["unmodelled"])["readOnly"] == "true"
    assert_same(round_trip(record), record)


def test_typed_fields_hold_well_typed_values() -> None:
    record = {"readOnly": True, "eventName": "GetObject", "userIdentity": {"accountId": "1"},
              "resources": [{"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}]}
    datum = to_avro(record, ingest=INGEST)
    assert datum["readOnly"] is True and datum["eventName"] == "GetObject"
    assert datum["userIdentity"]["accountId"] == "1"
    assert datum["resources"] == [{"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}]
    assert datum["unmodelled"] is None
    assert_same(round_trip(record), record)


def test_big_integers_and_number_types_are_exact() -> None:
    record = {
        "recipientAccountId": 123456789012345678901234567890,
        "requestParameters": {"big": 2**70, "neg": -(2**65), "one": 1, "onef": 1.0, "t": True},
        "additionalEventData": {"tiny": 5e-324, "huge": 1.7976931348623157e308, "nz": -0.0,
                                "avg": 8.82145e-05, "x": 85.4202380952},
        "p_schema_version": 0,
    }
    assert_same(round_trip(record), record)


def test_odd_and_colliding_keys() -> None:
    record = {"@timestamp": "t", "@version": "1", "x-amz-id-2": "abc", "": "empty key",
              "eventName": "A", "eventname": "b", "EVENTNAME": "c", "userIdentity.accountId": "x",
              "userIdentity": {"accountId": "1", "accountid": "2", "ümlaut": "ü", "a.b": {"c": 1}},
              "requestParameters": {"x-amz-id-2": 1, "@timestamp": None, "k\u0000": "nul"},
              # Our own field names are not CloudTrail keys: as record keys they are unmodelled.
              "ingest": 5, "unmodelled": "{}", "eventTimeMs": 1, "eventTimeStatus": "PRESENT",
              "labels": {"a": 1}}
    assert_same(round_trip(record), record)


def test_explicit_nulls_and_empty_containers_are_kept() -> None:
    record: dict[str, Any] = {
        "eventTime": None, "userIdentity": None, "resources": None, "requestParameters": None,
        "responseElements": {}, "tlsDetails": {}, "addendum": {"reason": None},
        "errorCode": "", "additionalEventData": [],
    }
    datum = to_avro(record, ingest=INGEST)
    assert datum["requestParameters"] == "null"  # JSON null, distinct from an absent key
    assert datum["tlsDetails"] == {}
    assert_same(round_trip(record), record)
    assert_same(round_trip({}), {})


def test_deep_nesting() -> None:
    eleven: Any = "leaf"
    for i in range(11):
        eleven = {f"level{i}": eleven, "list": [eleven, i]}
    deep: Any = 0
    for _ in range(300):
        deep = [deep]
    record = {"requestParameters": eleven, "somethingNew": eleven, "responseElements": deep}
    assert_same(round_trip(record), record)


def test_values_that_do_not_fit_go_to_unmodelled_whole() -> None:
    record = {
        "resources": [{"ARN": "a"}, {"arn": "lower"}],  # one element has an unknown key
        "userIdentity": {"type": 5, "sessionContext": {"webIdFederationData": {
            "attributes": {"n": 1}, "federatedProvider": "p"}}},
        "tlsDetails": "TLSv1.2",
    }
    datum = to_avro(record, ingest=INGEST)
    assert datum.get("resources") is None and datum.get("tlsDetails") is None
    assert datum["userIdentity"].get("type") is None
    assert datum["userIdentity"]["sessionContext"]["webIdFederationData"] == {
        "federatedProvider": "p"}
    decoded = decode(encode(datum))
    assert decoded["resources"] is None
    assert decoded["userIdentity"]["sessionContext"]["webIdFederationData"]["attributes"] is None
    assert_same(round_trip(record), record)


def test_lone_surrogates_survive() -> None:
    # json.loads accepts "\ud800"; UTF-8 (and so Avro strings) cannot hold it.
    record = json.loads('{"eventName": "a\\ud800", "requestParameters": {"k\\udfff": "v\\ud800"},'
                        '"userIdentity": {"sessionContext": {"webIdFederationData": '
                        '{"attributes": {"\\ud801": "x"}}}}, "\\ud802": 1}')
    assert_same(round_trip(record), record)


@pytest.mark.parametrize("value", [[], [{"eventName": "x"}], "text", 1, 1.5, True, None])
def test_non_object_records_are_rejected(value: Any) -> None:
    with pytest.raises(InvalidRecord, match="must be a JSON object") as err:
        to_avro(value, ingest=INGEST)
    assert err.value.error_type == "invalid_record"


def test_non_json_values_are_rejected() -> None:
    with pytest.raises(InvalidRecord, match="not a JSON value"):
        to_avro({"requestParameters": {"s": {1, 2}}}, ingest=INGEST)


@pytest.mark.parametrize(("value", "ms", "status"), [
    ("2014-03-06T21:22:54Z", 1394140974000, "PRESENT"),
    ("2014-03-06T21:22:54.1239Z", 1394140974123, "PRESENT"),
    ("2014-03-06t21:22:54z", 1394140974000, "PRESENT"),
    ("2014-03-06 21:22:54Z", 1394140974000, "PRESENT"),      # RFC 3339 allows the space
    ("2014-03-06T23:22:54+02:00", 1394140974000, "PRESENT"),
    ("2014-03-06T16:22:54.5-05:00", 1394140974500, "PRESENT"),
    ("1969-12-31T23:59:59.999Z", -1, "PRESENT"),
    (None, None, "MISSING"),
    ("2021-01-01 00:00:00", None, "INVALID"),          # Panther style, no zone: not guessed
    ("2021-01-01 00:00:00.000000000", None, "INVALID"),
    ("2021-01-01T00:00:00", None, "INVALID"),
    ("2021-02-30T00:00:00Z", None, "INVALID"),
    ("2016-12-31T23:59:60Z", None, "INVALID"),
    ("2021-01-01T00:00:00+24:00", None, "INVALID"),
    ("٢٠٢١-01-01T00:00:00Z", None, "INVALID"),         # non-ASCII digits
    ("ThisIsAWrongEventTime", None, "INVALID"),
    ("", None, "INVALID"),
    (1394140974000, None, "INVALID"),
])
def test_event_time_policy(value: Any, ms: int | None, status: str) -> None:
    record = {"eventTime": value, "eventName": "X"}
    datum = to_avro(record, ingest=INGEST)
    assert (datum["eventTimeMs"], datum["eventTimeStatus"]) == (ms, status)
    assert effective_time_ms(datum) == (INGEST.ingest_time_ms if ms is None else ms)
    assert_same(round_trip(record), record)  # eventTime itself is kept as written


def test_absent_event_time_is_missing_and_stays_absent() -> None:
    datum = decode(encode(to_avro({"eventName": "X"}, ingest=INGEST)))
    assert datum["eventTime"] is None and datum["eventTimeMs"] is None
    assert datum["eventTimeStatus"] == "MISSING"
    assert effective_time_ms(datum) == INGEST.ingest_time_ms
    assert "eventTime" not in from_avro(datum)


def test_ingest_metadata_round_trips() -> None:
    datum = decode(encode(to_avro({"eventName": "X"}, ingest=INGEST)))
    assert ingest_of(datum) == INGEST
    assert "ingest" not in from_avro(datum)
    with pytest.raises(TypeError):
        IngestMeta(1.5, "s", "p")  # type: ignore[arg-type]


@pytest.mark.parametrize(("unmodelled", "reason"), [
    ("{not json", "not JSON text"),
    ("[1]", "must be a JSON object"),
    ('{"eventName": "again"}', "collides"),
    ('{"userIdentity": {"accountId": "again"}}', "collides"),
])
def test_contradictory_datum_is_rejected(unmodelled: str, reason: str) -> None:
    datum = to_avro({"eventName": "X", "userIdentity": {"accountId": "1"}}, ingest=INGEST)
    datum["unmodelled"] = unmodelled
    with pytest.raises(InvalidDatum, match=reason):
        from_avro(datum)
