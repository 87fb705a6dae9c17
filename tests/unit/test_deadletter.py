"""The one dead-letter format (pipeline.deadletter): headers, provenance, truncation."""

from __future__ import annotations

import hashlib

from confluent_kafka import Message

from pipeline.deadletter import MAX_ERROR_BYTES, MAX_VALUE_BYTES, dead_letter, dead_letter_for


def test_consumed_message_keeps_raw_bytes_headers_and_coordinates() -> None:
    msg = Message(topic="audit.events.v1", partition=3, offset=42, key=b"k", value=b"\xc3\x01x",
                  headers=[("content-type", b"a"), ("empty", None)])
    rec = dead_letter_for(msg, ValueError("poison record"), "audit.dlq.v1")
    assert (rec.topic, rec.key, rec.value) == ("audit.dlq.v1", b"k", b"\xc3\x01x")
    assert rec.headers == (("content-type", b"a"), ("empty", b""),
                           ("x-error-type", b"ValueError"), ("x-error", b"poison record"),
                           ("x-source-topic", b"audit.events.v1"), ("x-source-partition", b"3"),
                           ("x-source-offset", b"42"))
    as_dict = Message(topic="audit.events.v1", partition=3, offset=42, key=b"k",
                      value=b"\xc3\x01x", headers={"content-type": b"a", "empty": None})
    assert dead_letter_for(as_dict, ValueError("poison record"), "audit.dlq.v1") == rec


def test_producer_side_names_source_and_location_only() -> None:
    rec = dead_letter(dlq_topic="dlq", error_type="JSONDecodeError", error="bad é", key=None,
                      value=b"{", source="cloudtrail-dir", location="a.json:3")
    assert rec.headers == (("x-error-type", b"JSONDecodeError"), ("x-error", "bad é".encode()),
                           ("x-source", b"cloudtrail-dir"), ("x-source-location", b"a.json:3"))
    assert rec.value == b"{" and rec.key is None


def test_large_values_keep_a_prefix_with_size_and_hash() -> None:
    value = bytes(range(256)) * (MAX_VALUE_BYTES // 256 + 10)
    rec = dead_letter(dlq_topic="dlq", error_type="RecordTooLarge", error="x", key=b"k",
                      value=value)
    h = dict(rec.headers)
    assert rec.value == value[:MAX_VALUE_BYTES]
    assert int(h["x-original-bytes"]) == len(value)
    assert h["x-original-sha256"] == hashlib.sha256(value).hexdigest().encode()


def test_values_at_the_limit_are_kept_whole() -> None:
    value = b"x" * MAX_VALUE_BYTES
    rec = dead_letter(dlq_topic="dlq", error_type="E", error="", key=None, value=value)
    assert rec.value == value and "x-original-bytes" not in dict(rec.headers)
    none = dead_letter(dlq_topic="dlq", error_type="E", error="", key=None, value=None)
    assert none.value is None


def test_long_and_unencodable_errors_are_cut_and_replaced() -> None:
    rec = dead_letter(dlq_topic="dlq", error_type="E", error="\ud800" + "e" * 10_000, key=None,
                      value=b"")
    error = dict(rec.headers)["x-error"]
    assert len(error) == MAX_ERROR_BYTES and error.startswith(b"?e")
