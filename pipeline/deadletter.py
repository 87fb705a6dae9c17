"""The one dead-letter format: what ``audit.dlq.v1`` records look like, whoever writes them.

A dead letter carries the poison input's raw key and value, its original headers, and headers
naming the reason: ``x-error-type`` (the exception's type name), ``x-error`` (its message, UTF-8,
at most :data:`MAX_ERROR_BYTES`), then whichever of the provenance headers are known:
``x-source-topic`` / ``x-source-partition`` / ``x-source-offset`` (a consumed record),
``x-source`` (the producer source, e.g. ``cloudtrail-dir``) and ``x-source-location`` (a path,
``path:line`` or ``path#Records[i]``). A value over :data:`MAX_VALUE_BYTES` keeps that prefix
and adds ``x-original-bytes`` (its full size) and ``x-original-sha256`` (hex digest of the whole),
so the record fits under the broker's message limit and the original can still be verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Message

from pipeline.model import KafkaRecord

MAX_VALUE_BYTES = 512 * 1024
"""Dead-letter values larger than this keep a prefix (brokers reject messages over ~1 MB)."""
MAX_ERROR_BYTES = 4096
"""``x-error`` is cut to this many bytes."""


def dead_letter(*, dlq_topic: str, error_type: str, error: str, key: bytes | None,
                value: bytes | None, headers: Iterable[tuple[str, Any]] = (),
                source_topic: str | None = None, partition: int | None = None,
                offset: int | None = None, source: str | None = None,
                location: str | None = None) -> KafkaRecord:
    """The DLQ record for one poison input (see the module docstring). ``headers`` are the
    input's own, kept first; a header value that is not ``bytes`` (e.g. None) becomes ``b""``.
    Provenance headers are written only for the arguments that are not None."""
    out = [(str(k), v if isinstance(v, bytes) else b"") for k, v in headers]
    out += [("x-error-type", error_type.encode("utf-8", "replace")),
            ("x-error", error.encode("utf-8", "replace")[:MAX_ERROR_BYTES])]
    if source_topic is not None:
        out.append(("x-source-topic", source_topic.encode("utf-8", "replace")))
    if partition is not None:
        out.append(("x-source-partition", str(partition).encode()))
    if offset is not None:
        out.append(("x-source-offset", str(offset).encode()))
    if source is not None:
        out.append(("x-source", source.encode("utf-8", "replace")))
    if location is not None:
        out.append(("x-source-location", location.encode("utf-8", "replace")))
    if value is not None and len(value) > MAX_VALUE_BYTES:
        out += [("x-original-bytes", str(len(value)).encode()),
                ("x-original-sha256", hashlib.sha256(value).hexdigest().encode())]
        value = value[:MAX_VALUE_BYTES]
    return KafkaRecord(topic=dlq_topic, key=key, value=value, headers=tuple(out))


def dead_letter_for(msg: Message, error: BaseException, dlq_topic: str) -> KafkaRecord:
    """The DLQ record for a consumed poison message: its raw key/value and headers, the
    exception as the reason, and its topic/partition/offset."""
    raw = msg.headers() or ()
    headers = raw.items() if isinstance(raw, dict) else raw
    return dead_letter(dlq_topic=dlq_topic, error_type=type(error).__name__, error=str(error),
                       key=msg.key(), value=msg.value(), headers=headers,
                       source_topic=msg.topic() or "", partition=msg.partition(),
                       offset=msg.offset())
