"""Avro single-object encoding of ApiCallEvent datums, and the Kafka headers that go with it.

A message is ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian, as
the Avro spec's single-object encoding says) + the Avro binary body. Any Avro library can decode
it given our ``schemas/``; the reader finds the writer schema by fingerprint in the
:class:`~pipeline.events.schemas.SchemaRegistry`. Confluent Schema Registry framing is not done
here.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from pipeline.events.avro_writer import Unsupported, compile_writer
from pipeline.events.errors import (
    BadMagicError,
    CorruptBodyError,
    InvalidDatum,
    TruncatedBodyError,
    UnknownSchemaError,
    WireFormatError,
)
from pipeline.events.schemas import SchemaEntry, SchemaRegistry, default_registry

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8

CONTENT_TYPE = "application/vnd.trailpipe.apicall.v1+avro"
HEADER_CONTENT_TYPE = "content-type"
HEADER_SCHEMA_NAME = "trailpipe.schema.name"
HEADER_SCHEMA_FINGERPRINT = "trailpipe.schema.fingerprint"
"""Header holding the fingerprint as 16 lowercase hex digits in wire byte order."""

Headers = tuple[tuple[str, bytes], ...]


def encode(datum: dict[str, Any], writer: SchemaEntry | None = None) -> bytes:
    """Single-object encoding of ``datum`` with ``writer`` (default: the current ApiCallEvent).
    Raises InvalidDatum if the datum does not fit the schema."""
    entry = writer or default_registry().get()
    write = _body_writers.get(entry.fingerprint) or _body_writer(entry)
    try:
        return write(datum, MAGIC + entry.fingerprint)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidDatum(f"datum does not fit {entry.name} v{entry.version}: {exc}") from exc


BodyWriter = Callable[[dict[str, Any], bytes], bytes]
_body_writers: dict[bytes, BodyWriter] = {}
"""Writer fingerprint -> ``(datum, prefix) -> prefix + body``, compiled on first use."""


def _body_writer(entry: SchemaEntry) -> BodyWriter:
    """The compiled writer of :mod:`pipeline.events.avro_writer` for ``entry``, or fastavro's
    ``schemaless_writer`` when the schema uses something the compiled writer does not do.
    (A race between threads only compiles twice; both results are the same.)"""
    try:
        write: BodyWriter = compile_writer(entry.raw)
    except Unsupported:
        def write(datum: dict[str, Any], prefix: bytes) -> bytes:
            buf = io.BytesIO()
            buf.write(prefix)
            schemaless_writer(buf, entry.parsed, datum)
            return buf.getvalue()
    _body_writers[entry.fingerprint] = write
    return write


def writer_of(message: bytes, registry: SchemaRegistry | None = None) -> SchemaEntry:
    """The writer schema named by a message's header. Raises BadMagicError,
    TruncatedBodyError (shorter than the 10-byte header) or UnknownSchemaError."""
    if not MAGIC.startswith(message[:2]):  # a 0- or 1-byte prefix of C3 01 is truncation
        raise BadMagicError(f"message starts with {message[:2].hex()}, not c301")
    if len(message) < HEADER_LEN:
        raise TruncatedBodyError(f"message of {len(message)} bytes has no complete header")
    fp = message[2:HEADER_LEN]
    try:
        return (registry or default_registry()).by_fingerprint(fp)
    except KeyError:
        raise UnknownSchemaError(f"no schema in schemas/ has fingerprint {fp.hex()}") from None


def decode(
    message: bytes,
    registry: SchemaRegistry | None = None,
    reader: SchemaEntry | None = None,
) -> dict[str, Any]:
    """Decode one message into a datum shaped like ``reader`` (default: like its writer).

    Raises a WireFormatError subclass: BadMagicError, UnknownSchemaError, TruncatedBodyError
    (the body ends early), CorruptBodyError (undecodable or trailing bytes), or a plain
    WireFormatError when the writer cannot be resolved to ``reader``.
    """
    writer = writer_of(message, registry)
    reader_schema = None if reader is None or reader is writer else reader.parsed
    what = f"{writer.name} v{writer.version} cannot be read as v{reader and reader.version}"
    return read_body(message, HEADER_LEN, writer.parsed, reader_schema, what)


def read_body(message: bytes, start: int, writer: Any, reader: Any, what: str
              ) -> dict[str, Any]:
    """The Avro record that fills ``message[start:]``, written with the parsed schema
    ``writer`` and read as ``reader`` (None: as written). Raises TruncatedBodyError (the body
    ends early), CorruptBodyError (undecodable, trailing bytes, not a record) or
    WireFormatError(``what``) when the writer cannot be resolved to the reader."""
    buf = io.BytesIO(message)
    buf.seek(start)
    try:
        datum = schemaless_reader(buf, writer, reader)
    except EOFError:
        raise TruncatedBodyError(f"Avro body ends early ({len(message)} bytes)") from None
    except SchemaResolutionError as exc:
        raise WireFormatError(f"{what}: {exc}") from exc
    except (ValueError, IndexError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        if buf.tell() >= len(message):  # ran out of bytes mid-value (a varint, a UTF-8 char)
            raise TruncatedBodyError(f"Avro body ends early ({len(message)} bytes)") from exc
        raise CorruptBodyError(f"Avro body does not decode: {type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(message):
        raise CorruptBodyError(f"{len(message) - buf.tell()} bytes after the Avro body")
    if not isinstance(datum, dict):
        raise CorruptBodyError("Avro body is not a record")
    return datum


def headers_for(entry: SchemaEntry | None = None) -> Headers:
    """Kafka headers naming content type, schema full name and writer fingerprint."""
    e = entry or default_registry().get()
    return (
        (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode()),
        (HEADER_SCHEMA_NAME, e.name.encode()),
        (HEADER_SCHEMA_FINGERPRINT, e.fingerprint_hex.encode()),
    )
