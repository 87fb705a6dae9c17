"""PartitionState (pipeline.aggregates.partition): event-time windows of one events partition,
fed aggregation-column tables built by hand, checked against a per-record reference model."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from aggregate_fixtures import (
    ACCOUNT,
    ALICE,
    BOB,
    REGION,
    T0,
    FakeInsights,
    chunks,
    compacted,
    decoded,
    emitted,
    expected_columns,
    generated,
    reference,
    restored,
    row,
    run,
    state,
    stream,
    table,
)

from pipeline.aggregates import windows
from pipeline.aggregates.cells import aggregate_key
from pipeline.aggregates.columns import aggregation_columns
from pipeline.aggregates.partition import PartitionState

IAM_KEY = (ACCOUNT, REGION, "iam.amazonaws.com", "CreateUser")


def bases_1m(datums: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in datums if d["window_size"] == "1m" and not d["correction"]]


# --- watermark and closing ------------------------------------------------------------------

def test_watermark_is_the_max_event_time_minus_grace() -> None:
    st = state(grace_ms=30_000)
    assert st.watermark_ms is None
    st.add(table([row(0, T0 + 10_000), row(1, T0 + 70_000), row(2, T0 + 5_000)]))
    assert st.watermark_ms == T0 + 40_000
    st.add(table([row(3, T0 + 50_000)]))  # older than the max: the watermark stays
    assert st.watermark_ms == T0 + 40_000


@pytest.mark.parametrize("per_row", [False, True])
def test_a_window_is_emitted_once_when_the_watermark_reaches_its_end(per_row: bool) -> None:
    rows = [row(0, T0 + 1_000), row(1, T0 + 65_000), row(2, T0 + 69_999),
            row(3, T0 + 70_000), row(4, T0 + 80_000), row(5, T0 + 130_000)]
    batches = [[r] for r in rows] if per_row else [rows]
    out = list(run(state(grace_ms=10_000), batches))
    first = [d for d in bases_1m(out) if d["window_start_ms"] == T0]
    assert len(first) == 1
    [d] = first
    assert (d["window_end_ms"], d["count"], d["trigger_offset"]) == (T0 + 60_000, 1, 3)
    assert d["principals"] == [{"value": ALICE, "count": 1}]
    assert (d["partition"], d["correction"]) == (0, False)
    # offset 5 takes the watermark to T0 + 120 s: the second minute closes there
    second = [d for d in bases_1m(out) if d["window_start_ms"] == T0 + 60_000]
    assert [(d["count"], d["trigger_offset"]) for d in second] == [(4, 5)]
    assert all(d["window_size"] == "1m" for d in out)  # the hour is still open


def test_late_within_grace_counts_in_the_base_window() -> None:
    rows = [row(0, T0 + 50_000), row(1, T0 + 75_000), row(2, T0 + 40_000),
            row(3, T0 + 95_000)]
    out = list(run(state(grace_ms=30_000), [rows]))
    assert [(d["window_start_ms"], d["count"], d["trigger_offset"]) for d in out] == \
        [(T0, 2, 3)]


def test_beyond_grace_a_record_becomes_a_correction_of_its_closed_window() -> None:
    st = state(grace_ms=30_000)
    base = list(run(st, [[row(0, T0 + 50_000), row(1, T0 + 95_000)]]))
    assert [(d["window_start_ms"], d["count"]) for d in base] == [(T0, 1)]
    late = [row(2, T0 + 10_000, principal=BOB), row(3, T0 + 20_000, source_ip="192.0.2.9"),
            row(4, T0 + 30_000, outcome="AccessDenied")]
    out = list(run(st, [late]))
    ok = [d for d in out if d["outcome"] == "OK"]
    assert len(ok) == 1 and len(out) == 2  # one correction per window key and batch
    [d] = ok
    assert d["correction"] and d["window_size"] == "1m" and d["window_start_ms"] == T0
    assert (d["count"], d["trigger_offset"], d["distinct_principals"]) == (2, 2, 2)
    assert d["principals"] == [{"value": ALICE, "count": 1}, {"value": BOB, "count": 1}]
    assert d["source_ips"] == [{"value": "192.0.2.1", "count": 1},
                               {"value": "192.0.2.9", "count": 1}]
    assert aggregate_key(d).endswith("|correction|0:2")
    assert st.late_events == 3
    # the hour is open: the late records count in its base
    hour = list(run(st, [[row(5, T0 + 3_600_000 + 30_000)]]))
    assert sorted((d["outcome"], d["count"], d["correction"]) for d in hour
                  if d["window_size"] == "1h") == [("AccessDenied", 1, False), ("OK", 4, False)]


def test_corrections_are_grouped_per_batch_keyed_by_their_first_late_offset() -> None:
    st = state()
    list(run(st, [[row(0, T0), row(1, T0 + 60_000)]]))
    out = list(run(st, [[row(2, T0 + 1)], [row(3, T0 + 2)]]))
    assert [(aggregate_key(d).rsplit("|", 1)[1], d["count"]) for d in out] == \
        [("0:2", 1), ("0:3", 1)]


def test_different_dimensions_never_share_a_kafka_key() -> None:
    st = state()
    forged = row(1, T0 + 1, identity_type="IAMUser|correction|0:3")
    bases = list(run(st, [[row(0, T0), forged, row(2, T0 + 60_000)]]))
    [correction] = list(run(st, [[row(3, T0 + 5)]]))
    assert aggregate_key(correction) not in {aggregate_key(d) for d in bases}


def test_a_correction_carries_a_watermark_at_or_past_its_window_end() -> None:
    out = list(run(state(), [[row(0, T0), row(1, T0 + 120_000), row(2, T0 + 5_000)]]))
    [correction] = [d for d in out if d["correction"]]
    assert correction["watermark_ms"] >= correction["window_end_ms"]


# --- against the reference model, any batch boundaries ----------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_batching_equals_the_per_record_reference(seed: int) -> None:
    rows = stream(seed)
    expected = reference(rows, grace_ms=90_000)
    assert expected.corrections and any(k[0] == "1h" for k in expected.corrections)
    assert len({k[0] for k in expected.bases}) == 2
    per_row = [[[r] for r in rows]] if seed == 1 else []  # slow: one add per row
    for batches in ([rows], chunks(rows, seed), *per_row):
        got = emitted(run(state(grace_ms=90_000), batches))
        assert got.bases == expected.bases
        assert got.corrections == expected.corrections


def test_aggregation_columns_follow_the_documented_definitions() -> None:
    records = generated(120)
    odd = [{k: v for k, v in records[0].items() if k not in ("recipientAccountId", "eventTime")},
           {**records[1], "userIdentity": {"type": "AWSService", "invokedBy": "ec2.amazonaws.com",
                                           "accountId": "333333333333"}},
           {**records[2], "readOnly": False, "managementEvent": False,
            "eventCategory": "Management"},
           {k: v for k, v in records[3].items() if k not in ("sourceIPAddress", "errorCode")}]
    records += odd
    got = aggregation_columns(decoded(records, 3, 100)).to_pylist()
    assert got == [expected_columns(r, 100 + i) for i, r in enumerate(records)]
    assert {r["write_management"] for r in got} == {True, False}


def test_generated_out_of_order_traffic_equals_the_reference() -> None:
    rows = aggregation_columns(decoded(generated(), 0, 0)).to_pylist()
    expected = reference(rows, grace_ms=90_000)
    assert expected.corrections and len(expected.bases) > 100
    got = emitted(run(state(grace_ms=90_000), chunks(rows, 7)))
    assert (got.bases, got.corrections) == (expected.bases, expected.corrections)


# --- the changelog --------------------------------------------------------------------------

def _log_run(st: PartitionState, batches: list[list[dict[str, Any]]],
             log: list[tuple[str, bytes | None]]) -> list[dict[str, Any]]:
    out = []
    for batch in batches:
        closed = st.add(table(batch))
        out += closed.aggregates + closed.insights
        log += st.changes()
    return out


@pytest.mark.parametrize("chunk_rows", [windows.CHUNK_ROWS, 3])
def test_a_state_restored_from_its_changelog_continues_like_the_original(
        chunk_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(windows, "CHUNK_ROWS", chunk_rows)
    batches = chunks(stream(4), 4)
    for cut in (1, len(batches) // 2, len(batches) - 2):
        fake, log = FakeInsights(), list[tuple[str, bytes | None]]()
        original = state(grace_ms=90_000, insights=fake)
        _log_run(original, batches[:cut], log)
        if cut > 1:
            assert any(v is None for _, v in log)  # closes wrote snapshots and tombstones
        if chunk_rows == 3 and cut > 1:
            assert any(not k.endswith("|0") for k, _ in log if k.startswith("1m|"))
        fakes = [FakeInsights(), FakeInsights()]
        copies = [restored(replay, grace_ms=90_000, insights=copy_fake)
                  for replay, copy_fake in zip((log, compacted(log)), fakes, strict=True)]
        handed = len(fake.minutes)
        expected = _log_run(original, batches[cut:], [])
        assert expected and len(fake.minutes) > handed
        for copy, copy_fake in zip(copies, fakes, strict=True):
            assert _log_run(copy, batches[cut:], []) == expected
            assert copy.watermark_ms == original.watermark_ms
            assert copy.late_events == original.late_events
            assert copy_fake.minutes[handed:] == fake.minutes[handed:]


def test_changes_after_a_batch_then_nothing_until_the_next() -> None:
    st = state()
    st.add(table([row(0, T0), row(1, T0 + 1)]))
    first = list(st.changes())
    assert {k.split("|")[0] for k, _ in first} == {"1m", "1h", "insights", "meta"}
    assert list(st.changes()) == []


# --- value lists ------------------------------------------------------------------------------

def _capped(max_values: int) -> dict[str, Any]:
    """The one datum of a window with 3 principals (and a call without) and 2 source IPs."""
    rows = [row(i, T0 + i, principal=p, source_ip=ip) for i, (p, ip) in enumerate(
        [(ALICE, "192.0.2.1"), (BOB, "192.0.2.1"), ("carol", "192.0.2.2"), (ALICE, None),
         (None, "192.0.2.1")])]
    rows.append(row(9, T0 + 60_000))
    [d] = [d for d in run(state(max_values=max_values), [rows]) if d["window_start_ms"] == T0]
    assert (d["count"], d["distinct_principals"], d["distinct_source_ips"]) == (5, 3, 2)
    return d


def test_values_within_max_values_are_listed_by_count_then_value() -> None:
    d = _capped(3)
    assert d["values_complete"]
    assert d["principals"] == [{"value": ALICE, "count": 2}, {"value": BOB, "count": 1},
                               {"value": "carol", "count": 1}]
    assert d["source_ips"] == [{"value": "192.0.2.1", "count": 3},
                               {"value": "192.0.2.2", "count": 1}]


def test_over_max_values_the_lists_are_empty_and_the_distinct_counts_exact() -> None:
    d = _capped(1)
    assert not d["values_complete"]
    assert (d["principals"], d["source_ips"]) == ([], [])


def test_when_one_list_overflows_both_are_left_empty_as_the_schema_says() -> None:
    d = _capped(2)  # 3 principals overflow, 2 source IPs fit
    assert not d["values_complete"]
    assert (d["principals"], d["source_ips"]) == ([], [])


# --- Insights handoff -------------------------------------------------------------------------

def test_insights_sees_every_closed_minute_in_order_zero_minutes_included() -> None:
    fake = FakeInsights()
    st = state(grace_ms=10_000, insights=fake)
    minute = 60_000
    rows = [row(0, T0 + 1_000, user_agent="ua-1"),
            row(1, T0 + 2_000, outcome="AccessDenied", principal=BOB, user_agent="ua-2"),
            row(2, T0 + 3_000, write_management=False),  # reads are not Insights' business
            row(3, T0 + 4_000, event_name="DeleteUser", principal=None),
            row(4, T0 + minute + 1_000),
            # minute 2 has no write calls
            row(5, T0 + 2 * minute + 5_000, write_management=False),
            row(6, T0 + 3 * minute + 5_000)]
    st.add(table(rows))
    assert [m for m, _ in fake.minutes] == [T0, T0 + minute]  # watermark: T0 + 3m - 5 s
    st.add(table([row(7, T0 + 4 * minute + 10_000)]))
    assert [m for m, _ in fake.minutes] == [T0 + i * minute for i in range(4)]
    stats = dict(fake.minutes)
    assert stats[T0 + 2 * minute] == {}
    create = stats[T0][IAM_KEY]
    assert (create["calls"], create["errors"]) == (2, 1)
    assert create["arns"] == Counter({ALICE: 1, BOB: 1})
    assert create["user_agents"] == Counter({"ua-1": 1, "ua-2": 1})
    assert create["error_codes"] == Counter({"null": 1, "AccessDenied": 1})
    assert (create["error_arns"], create["error_user_agents"]) == (Counter({BOB: 1}),
                                                                   Counter({"ua-2": 1}))
    delete = stats[T0][(*IAM_KEY[:3], "DeleteUser")]
    assert (delete["calls"], delete["errors"], delete["arns"]) == (1, 0, Counter())
    assert stats[T0 + minute][IAM_KEY]["calls"] == 1
    assert stats[T0 + 3 * minute][IAM_KEY]["calls"] == 1


def test_insights_events_are_returned_and_restore_keeps_the_minute_sequence() -> None:
    event = {"eventType": "AwsCloudTrailInsight"}
    fake = FakeInsights(emit={T0 + 60_000: event})
    st = state(insights=fake)
    closed = st.add(table([row(0, T0), row(1, T0 + 60_000), row(2, T0 + 120_000)]))
    assert closed.insights == [event]
    log = list(st.changes())
    assert (FakeInsights.KEY, b"[%d,%d]" % (T0, T0 + 60_000)) in log
    copy_fake = FakeInsights()
    copy = restored(log, insights=copy_fake)
    assert copy_fake.restores == [FakeInsights.KEY]
    copy.add(table([row(3, T0 + 240_000)]))
    assert [m for m, _ in copy_fake.minutes] == [T0 + i * 60_000 for i in range(4)]
