"""Dead-letter rate per source: the source comes from x-source, else x-source-topic, else
unknown; the rate is per minute over the interval; dlq_rate_high once above the threshold and
dlq_rate_ok when it is back (no dead letters at all counts as back)."""

from __future__ import annotations

import pytest

from pipeline.deadletter import dead_letter
from pipeline.health.dlq import DlqRateTracker, count_sources, source_of

NOW_MS = 1_764_000_000_000


def test_source_prefers_x_source_then_source_topic_then_unknown() -> None:
    both = dead_letter(dlq_topic="dlq", error_type="E", error="e", key=None, value=b"x",
                       source_topic="audit.events.v1", partition=1, offset=2,
                       source="cloudtrail-dir")
    consumed = dead_letter(dlq_topic="dlq", error_type="E", error="e", key=None, value=b"x",
                           source_topic="audit.events.v1", partition=1, offset=2)
    bare = dead_letter(dlq_topic="dlq", error_type="E", error="e", key=None, value=b"x")
    assert source_of(both.headers) == "cloudtrail-dir"
    assert source_of(consumed.headers) == "audit.events.v1"
    assert source_of(bare.headers) == "unknown"
    assert source_of(None) == "unknown"
    assert source_of({"x-source-topic": b"t"}) == "t"
    assert source_of([("x-source", None), ("x-source-topic", b"t")]) == "t"


def test_a_dead_letter_of_a_dead_letter_counts_under_its_newest_source() -> None:
    first = dead_letter(dlq_topic="dlq", error_type="E", error="e", key=None, value=b"x",
                        source="http")
    again = dead_letter(dlq_topic="dlq", error_type="E", error="e", key=None, value=b"x",
                        headers=first.headers, source="replay")
    assert source_of(again.headers) == "replay"


def test_counts_by_source() -> None:
    headers = [[("x-source", b"http")], [("x-source", b"http")],
               [("x-source-topic", b"audit.events.v1")], None]
    assert count_sources(headers) == {"http": 2, "audit.events.v1": 1, "unknown": 1}


def test_rate_above_threshold_is_high_once_then_ok_when_back() -> None:
    t = DlqRateTracker(threshold_per_min=10, component="aggregator")
    # 30 in 2 minutes = 15/min > 10; 20 in 2 minutes = 10/min is not above
    (high,) = t.observe({"http": 30, "s3": 20}, elapsed_ms=120_000, now_ms=NOW_MS)
    assert (high["status"], high["subject"], high["stage"]) == ("dlq_rate_high", "http", "dlq")
    assert high["metrics"] == {"dead_letters": 30.0, "dead_letters_per_min": 15.0,
                               "interval_ms": 120_000.0, "threshold_per_min": 10.0}
    assert high["details"] == {"source": "http"} and high["at_ms"] == NOW_MS
    assert t.observe({"http": 11}, elapsed_ms=60_000, now_ms=NOW_MS) == []
    (ok,) = t.observe({}, elapsed_ms=60_000, now_ms=NOW_MS)
    assert (ok["status"], ok["subject"], ok["metrics"]["dead_letters_per_min"]) == (
        "dlq_rate_ok", "http", 0.0)
    assert t.observe({}, elapsed_ms=60_000, now_ms=NOW_MS) == []


def test_sources_are_independent() -> None:
    t = DlqRateTracker(threshold_per_min=1)
    out = t.observe({"a": 5, "b": 5, "c": 1}, elapsed_ms=60_000, now_ms=NOW_MS)
    assert [(d["status"], d["subject"]) for d in out] == [("dlq_rate_high", "a"),
                                                         ("dlq_rate_high", "b")]
    out = t.observe({"a": 5, "c": 9}, elapsed_ms=60_000, now_ms=NOW_MS)
    assert [(d["status"], d["subject"]) for d in out] == [("dlq_rate_ok", "b"),
                                                         ("dlq_rate_high", "c")]


def test_an_empty_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        DlqRateTracker(threshold_per_min=1).observe({"a": 1}, elapsed_ms=0, now_ms=NOW_MS)
