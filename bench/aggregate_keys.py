"""The key and event time the ``aggregate`` bench's Quix Streams peer counts by, with the
aggregator's definitions (:mod:`pipeline.aggregates.columns`): account = recipientAccountId,
else userIdentity.accountId, else ""; region, eventSource, eventName else ""; outcome =
errorCode, else ``OK``; identity type = userIdentity.type, else "". Event time = eventTimeMs,
else the Kafka timestamp.

Standard library only: :mod:`bench.quix_aggregate_app` imports it inside the Quix virtualenv.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEPARATOR = "|"


def aggregate_key(datum: Mapping[str, Any]) -> str:
    """``account|region|eventSource|eventName|outcome|identityType`` of an ApiCallEvent datum
    (the order of ``pipeline.aggregates.columns.DIMENSIONS``); only a missing (None) value
    falls back, as the aggregator's ``coalesce`` does."""
    identity = datum.get("userIdentity") or {}
    return SEPARATOR.join((
        _first(datum.get("recipientAccountId"), identity.get("accountId"), ""),
        _first(datum.get("awsRegion"), ""), _first(datum.get("eventSource"), ""),
        _first(datum.get("eventName"), ""), _first(datum.get("errorCode"), "OK"),
        _first(identity.get("type"), "")))


def _first(*values: str | None) -> str:
    return next(v for v in values if v is not None)


def event_time_ms(datum: Mapping[str, Any], kafka_timestamp_ms: int) -> int:
    """The time the aggregator windows ``datum`` by."""
    ms = datum.get("eventTimeMs")
    return kafka_timestamp_ms if ms is None else int(ms)
