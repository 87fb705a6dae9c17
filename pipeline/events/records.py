"""Avro single-object encoding of our own record types (Alert, Aggregate, Health): ``C3 01`` +
the schema's CRC-64-AVRO fingerprint + the body, as events are. Any Avro library reads them
with the ``schemas/*.avsc`` file of the fingerprint."""

from __future__ import annotations

import io
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from pipeline.events.schemas import default_registry
from pipeline.events.wire import MAGIC


class RecordDecodeError(ValueError):
    """A value that is not a single-object encoded record of the expected type."""


def encode_record(name: str, datum: dict[str, Any]) -> bytes:
    """``datum`` written with the newest schema named ``name`` (e.g.
    ``io.trailpipe.audit.Health``). Raises ValueError when it does not fit the schema."""
    entry = default_registry().newest(name)
    out = io.BytesIO()
    out.write(MAGIC + entry.fingerprint)
    schemaless_writer(out, entry.parsed, datum)
    return out.getvalue()


def decode_record(name: str, value: bytes | None) -> dict[str, Any]:
    """The datum in ``value``; :class:`RecordDecodeError` (naming what is wrong) when it is not
    a ``name`` record this build knows."""
    short = name.rsplit(".", 1)[-1]
    if not value or value[:2] != MAGIC:
        raise RecordDecodeError("not Avro single-object encoded (no C3 01 header)")
    try:
        entry = default_registry().by_fingerprint(value[2:10])
    except KeyError:
        raise RecordDecodeError(f"unknown schema fingerprint {value[2:10].hex()}") from None
    if entry.name != name:
        raise RecordDecodeError(f"a {entry.name} record, not a {short}")
    try:
        read = schemaless_reader(io.BytesIO(value[10:]), entry.parsed, None,
                                 return_record_name=False)
    except Exception as exc:
        raise RecordDecodeError(f"corrupt {short} body: {exc}") from exc
    if not isinstance(read, dict):
        raise RecordDecodeError(f"a {short} body must be a record")
    datum: dict[str, Any] = read
    return datum
