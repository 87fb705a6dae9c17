"""Typed errors of the event model. Each carries ``error_type`` (a stable snake_case name that
dead-letter headers and logs use) so callers never parse messages."""

from __future__ import annotations

from typing import ClassVar


class EventError(ValueError):
    """Base class: the input (a record, a datum or wire bytes) cannot be used as an event."""

    error_type: ClassVar[str] = "event_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidRecord(EventError):
    """A CloudTrail record that cannot be mapped (not a JSON object, or not JSON at all)."""

    error_type = "invalid_record"


class InvalidDatum(EventError):
    """An Avro datum whose parts contradict each other (e.g. ``unmodelled`` is not JSON text)."""

    error_type = "invalid_datum"


class WireFormatError(EventError):
    """Bytes that are not a decodable Avro single-object-encoded ApiCallEvent."""

    error_type = "wire_format"


class BadMagicError(WireFormatError):
    """The message does not start with the single-object marker ``C3 01``."""

    error_type = "bad_magic"


class UnknownSchemaError(WireFormatError):
    """The writer fingerprint names no schema in ``schemas/``."""

    error_type = "unknown_schema"


class CorruptBodyError(WireFormatError):
    """The Avro body does not decode with the writer schema (bad union index, bad UTF-8, ...)."""

    error_type = "corrupt_body"


class TruncatedBodyError(CorruptBodyError):
    """The message ends before its header or its Avro body is complete."""

    error_type = "truncated_body"
