"""Consumer lag as Health datums: lag_high when either threshold is crossed (once), lag_ok when
both are back under, a lag record per partition only when asked; state per group, topic and
partition."""

from __future__ import annotations

from pipeline.health.lag import LagTracker, PartitionLag

NOW_MS = 1_764_000_000_000


def lag(events: int, lag_s: float | None = None, *, group: str = "trailpipe-archiver",
        partition: int = 0) -> PartitionLag:
    return PartitionLag(group, "audit.events.v1", partition, committed=1_000,
                        end=1_000 + events, lag_s=lag_s)


def tracker() -> LagTracker:
    return LagTracker(threshold_events=100, threshold_s=60, component="aggregator")


def statuses(datums: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(d["status"], d["subject"]) for d in datums]


def test_lag_in_events_is_end_minus_committed_never_negative() -> None:
    assert lag(250).lag_events == 250
    assert PartitionLag("g", "t", 0, committed=10, end=7).lag_events == 0


def test_under_both_thresholds_nothing_is_reported() -> None:
    assert tracker().observe([lag(100, 60.0), lag(0)], now_ms=NOW_MS) == []


def test_events_over_threshold_is_lag_high_once_then_lag_ok() -> None:
    t = tracker()
    (high,) = t.observe([lag(101, 5.0)], now_ms=NOW_MS)
    assert (high["status"], high["subject"]) == ("lag_high",
                                                 "trailpipe-archiver/audit.events.v1[0]")
    assert high["metrics"] == {"lag_events": 101.0, "lag_s": 5.0, "committed_offset": 1000.0,
                               "end_offset": 1101.0}
    assert high["details"] == {"group": "trailpipe-archiver", "topic": "audit.events.v1",
                               "partition": "0"}
    assert high["stage"] == "lag" and high["at_ms"] == NOW_MS
    assert t.observe([lag(5_000, 5.0)], now_ms=NOW_MS + 1) == []
    (ok,) = t.observe([lag(3, 1.0)], now_ms=NOW_MS + 2)
    assert ok["status"] == "lag_ok" and ok["metrics"]["lag_events"] == 3.0


def test_seconds_over_threshold_alone_is_lag_high() -> None:
    t = tracker()
    assert statuses(t.observe([lag(2, 61.0)], now_ms=NOW_MS)) == [
        ("lag_high", "trailpipe-archiver/audit.events.v1[0]")]
    # still old: no new record; the age unknown and events under: back to ok
    assert t.observe([lag(2, 120.0)], now_ms=NOW_MS) == []
    assert statuses(t.observe([lag(2, None)], now_ms=NOW_MS))[0][0] == "lag_ok"


def test_state_is_per_group_and_partition() -> None:
    t = tracker()
    first = t.observe([lag(500, partition=0), lag(500, partition=1),
                       lag(500, group="trailpipe-alerter")], now_ms=NOW_MS)
    assert statuses(first) == [("lag_high", "trailpipe-archiver/audit.events.v1[0]"),
                               ("lag_high", "trailpipe-archiver/audit.events.v1[1]"),
                               ("lag_high", "trailpipe-alerter/audit.events.v1[0]")]
    # partition 1 is not observed this time: it stays high, no record
    assert statuses(t.observe([lag(0, partition=0), lag(500, group="trailpipe-alerter")],
                              now_ms=NOW_MS)) == [
        ("lag_ok", "trailpipe-archiver/audit.events.v1[0]")]
    assert statuses(t.observe([lag(0, partition=1)], now_ms=NOW_MS)) == [
        ("lag_ok", "trailpipe-archiver/audit.events.v1[1]")]


def test_report_all_adds_one_lag_record_per_partition() -> None:
    t = tracker()
    out = t.observe([lag(0), lag(7, 2.5, partition=1), lag(900, partition=2)], now_ms=NOW_MS,
                    report_all=True)
    assert [d["status"] for d in out] == ["lag", "lag", "lag", "lag_high"]
    assert [d["metrics"]["lag_events"] for d in out[:3]] == [0.0, 7.0, 900.0]
    assert "lag_s" not in out[0]["metrics"] and out[1]["metrics"]["lag_s"] == 2.5
