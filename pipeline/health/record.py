"""The Avro ``Health`` record (``schemas/Health.v1.avsc``): build, encode, decode, key.

One shape for every component (archiver, alerter, notifier, aggregator, the health monitor):
``component``, ``status``, ``subject`` and a one-sentence ``message``; numbers go in
``metrics`` (doubles), everything else in ``details`` (text). The Kafka key is
``component|subject``, so the latest record of a key is the current state of that subject.
A problem ends with one of :data:`QUIET_STATUSES`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

from pipeline.events.records import decode_record, encode_record
from pipeline.model import KafkaRecord

HEALTH = "io.trailpipe.audit.Health"
"""The Avro full name of the record (see :mod:`pipeline.events.records`)."""

QUIET_STATUSES = frozenset({"recovered", "ok", "source_resumed", "lag_ok", "dlq_rate_ok", "lag"})
"""Statuses that report the end of a problem, or a measurement (``lag``): never an alert."""


def is_quiet(status: str) -> bool:
    """True when ``status`` is not a problem (see :data:`QUIET_STATUSES`)."""
    return status in QUIET_STATUSES


def health_datum(component: str, status: str, subject: str, message: str, *,
                 stage: str | None = None, metrics: Mapping[str, float | int] | None = None,
                 details: Mapping[str, Any] | None = None, at_ms: int | None = None,
                 host: str | None = None) -> dict[str, Any]:
    """A ``Health`` datum ready for :func:`encode_health`. ``details`` values that are None are
    left out and the others become text; ``metrics`` values become floats. ``at_ms`` defaults
    to now and ``host`` to this machine's name. Raises ValueError for a metric that is not a
    number."""
    return {
        "component": component, "status": status, "subject": subject, "message": message,
        "at_ms": time.time_ns() // 1_000_000 if at_ms is None else at_ms,
        "stage": stage, "host": socket.gethostname() if host is None else host,
        "metrics": {str(k): float(v) for k, v in (metrics or {}).items()},
        "details": {str(k): v if isinstance(v, str) else str(v)
                    for k, v in (details or {}).items() if v is not None},
    }


def encode_health(datum: dict[str, Any]) -> bytes:
    """Single-object Avro bytes of ``datum``; ValueError when it does not fit the schema."""
    return encode_record(HEALTH, datum)


def decode_health(value: bytes | None) -> dict[str, Any]:
    """The datum in ``value``; :class:`~pipeline.events.records.RecordDecodeError` when it is
    not a ``Health`` record."""
    return decode_record(HEALTH, value)


def health_key(datum: Mapping[str, Any]) -> bytes:
    """The Kafka key of a health record: ``component|subject``."""
    return f"{datum['component']}|{datum['subject']}".encode()


def health_record(topic: str, datum: dict[str, Any]) -> KafkaRecord:
    """The output record of ``datum`` for ``topic``, keyed ``component|subject``."""
    return KafkaRecord(topic, encode_health(datum), health_key(datum))
