"""Health records as alerts: every Avro Health record that is not quiet is a hit of the built-in
health rule, keyed component|status|subject|stage, high for the serious statuses; quiet ones
are skipped; a value that is not a Health record raises (the Runner dead-letters it)."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.alerter.health import HEALTH_RULE, health_hits
from pipeline.events.records import RecordDecodeError
from pipeline.health.record import encode_health, health_datum
from pipeline.rules.model import Hit

AT_MS = 1_764_000_000_000


def hits_of(*datums: dict[str, Any]) -> list[Hit]:
    values = [encode_health(d) for d in datums]
    n = len(values)
    return health_hits(values, [0] * n, list(range(10, 10 + n)), [AT_MS + 5] * n, "health")


def test_problems_become_hits_and_quiet_records_are_skipped() -> None:
    failing = health_datum("archiver", "failing", "lake", "upload failed", stage="upload",
                           metrics={"consecutive_failures": 2},
                           details={"error": "AccessDenied"}, at_ms=AT_MS, host="h")
    lag = health_datum("aggregator", "lag_high", "g/t[1]", "behind", stage="lag",
                       at_ms=AT_MS + 1, host="h")
    dlq = health_datum("aggregator", "dlq_rate_high", "http", "many", at_ms=AT_MS + 2, host="h")
    quiet = [health_datum("archiver", s, "lake", "fine", at_ms=AT_MS)
             for s in ("recovered", "lag_ok", "lag", "dlq_rate_ok", "source_resumed", "ok")]
    hits = hits_of(failing, *quiet, lag, dlq)
    assert [(h.key, h.severity, h.title) for h in hits] == [
        ("archiver|failing|lake|upload", "high", "trailpipe archiver: failing (upload) on lake"),
        ("aggregator|lag_high|g/t[1]|lag", "high",
         "trailpipe aggregator: lag_high (lag) on g/t[1]"),
        ("aggregator|dlq_rate_high|http|", "medium",
         "trailpipe aggregator: dlq_rate_high on http")]
    first = hits[0]
    assert (first.target, first.rule_id, first.event_time_ms, first.event_id,
            first.produced_ms) == (HEALTH_RULE.id, HEALTH_RULE.id, AT_MS, "health:health:0:10",
                                   AT_MS + 5)
    assert first.context == {
        "component": "archiver", "status": "failing", "subject": "lake",
        "message": "upload failed", "stage": "upload", "host": "h", "at_ms": str(AT_MS),
        "error": "AccessDenied", "consecutive_failures": "2"}


@pytest.mark.parametrize("value", [b'{"component": "archiver", "status": "failing"}', b""])
def test_a_value_that_is_not_a_health_record_raises(value: bytes) -> None:
    with pytest.raises(RecordDecodeError):
        health_hits([value], [0], [0], [None], "health")
