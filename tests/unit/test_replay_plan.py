"""The replay plan from topic metadata (no broker)."""

from __future__ import annotations

import pytest

from pipeline.events.partition import event_key, partition_for
from pipeline.replay.filters import Filters
from pipeline.replay.plan import build_plan, partitions_to_read, seek_ms

HOUR_MS = 3_600_000
T1 = 1_764_000_000_000
WINDOW = Filters(T1, T1 + HOUR_MS)


def test_every_partition_without_account_and_region() -> None:
    assert partitions_to_read(WINDOW, 6) == list(range(6))
    only_account = Filters(T1, T1 + 1, account="111122223333")
    assert partitions_to_read(only_account, 6) == list(range(6))


@pytest.mark.parametrize("partitions", [1, 3, 6, 12])
def test_targeted_reads_the_partition_the_producer_key_lands_on(partitions: int) -> None:
    # The producer keys by recipientAccountId (else userIdentity.accountId) and awsRegion.
    record = {"recipientAccountId": "123456789012", "awsRegion": "eu-west-3",
              "userIdentity": {"accountId": "999999999999"}}
    f = Filters(T1, T1 + 1, account="123456789012", region="eu-west-3")
    assert partitions_to_read(f, partitions) == [partition_for(event_key(record), partitions)]


def test_targeted_partitions_spread_over_the_topic() -> None:
    # Different keys pick different partitions (the hash is not a constant).
    picked = {partitions_to_read(Filters(T1, T1 + 1, account=f"{n:012d}", region="us-east-1"),
                                 6)[0] for n in range(40)}
    assert len(picked) > 3


def test_start_is_the_time_offset_clamped_to_the_log_and_end_the_high_watermark() -> None:
    watermarks = {0: (0, 100), 1: (50, 80), 2: (0, 40)}
    time_offsets = {0: 30, 1: 10, 2: -1}  # 1: older than the log start; 2: nothing that new
    plan = build_plan("events", WINDOW, HOUR_MS, 3, watermarks, time_offsets)
    got = [(r.partition, r.start, r.end) for r in plan.ranges]
    assert got == [(0, 30, 100), (1, 50, 80), (2, 40, 40)]
    assert plan.estimated_records == 70 + 30 + 0
    assert plan.to_json()["coverage_gap"] == [1]  # partition 1 lost its oldest records


def test_only_the_targeted_partition_needs_metadata() -> None:
    f = Filters(T1, T1 + 1, account="123456789012", region="eu-west-3")
    (p,) = partitions_to_read(f, 6)
    plan = build_plan("events", f, 0, 6, {p: (0, 9)}, {p: 4})
    assert [(r.partition, r.start, r.end) for r in plan.ranges] == [(p, 4, 9)]


def test_seek_is_widened_by_the_lateness_margin_and_never_negative() -> None:
    assert seek_ms(WINDOW, HOUR_MS) == T1 - HOUR_MS
    assert seek_ms(Filters(1_000, 2_000), HOUR_MS) == 0
