"""The Avro Health record: the builder coerces details to text and metrics to floats, the
bytes round-trip through the schema, the key is component|subject, and decoding refuses
anything that is not a Health record."""

from __future__ import annotations

import pytest

from pipeline.events.records import RecordDecodeError
from pipeline.events.schemas import default_registry
from pipeline.events.wire import MAGIC
from pipeline.health.record import (
    decode_health,
    encode_health,
    health_datum,
    health_record,
    is_quiet,
)


def test_a_datum_round_trips_with_details_as_text_and_metrics_as_floats() -> None:
    datum = health_datum("archiver", "failing", "lake-bucket", "upload failed",
                         stage="upload", metrics={"consecutive_failures": 3, "lag_s": 1.5},
                         details={"error_code": 503, "since_ms": 1_700_000_000_000,
                                  "key": None, "error": "boom"},
                         at_ms=1_700_000_000_123, host="h1")
    assert decode_health(encode_health(datum)) == {
        "component": "archiver", "status": "failing", "subject": "lake-bucket",
        "message": "upload failed", "at_ms": 1_700_000_000_123, "stage": "upload",
        "host": "h1", "metrics": {"consecutive_failures": 3.0, "lag_s": 1.5},
        "details": {"error_code": "503", "since_ms": "1700000000000", "error": "boom"}}


def test_defaults_are_now_and_this_host() -> None:
    datum = health_datum("alerter", "ok", "x", "fine")
    assert datum["at_ms"] > 1_700_000_000_000 and datum["host"]
    assert datum["metrics"] == {} and datum["details"] == {} and datum["stage"] is None


def test_a_metric_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError):
        health_datum("alerter", "ok", "x", "fine", metrics={"n": "many"})  # type: ignore[dict-item]


def test_the_record_is_keyed_component_and_subject() -> None:
    record = health_record("audit.health.v1", health_datum("aggregator", "lag_high",
                                                           "g/t[3]", "behind"))
    assert record.topic == "audit.health.v1" and record.key == b"aggregator|g/t[3]"
    assert decode_health(record.value)["status"] == "lag_high"


@pytest.mark.parametrize("value", [b'{"status": "failing"}', b"", None, b"\xc3\x01" + b"\0" * 8])
def test_what_is_not_a_health_record_does_not_decode(value: bytes | None) -> None:
    with pytest.raises(RecordDecodeError):
        decode_health(value)


def test_another_record_type_does_not_decode_as_health() -> None:
    alert = default_registry().newest("io.trailpipe.audit.Alert")
    with pytest.raises(RecordDecodeError, match="not a Health"):
        decode_health(MAGIC + alert.fingerprint + b"\0")


@pytest.mark.parametrize(("status", "quiet"), [
    ("recovered", True), ("ok", True), ("source_resumed", True), ("lag_ok", True),
    ("dlq_rate_ok", True), ("lag", True), ("failing", False), ("lag_high", False),
    ("dlq_rate_high", False), ("source_silent", False)])
def test_quiet_statuses(status: str, quiet: bool) -> None:
    assert is_quiet(status) is quiet

