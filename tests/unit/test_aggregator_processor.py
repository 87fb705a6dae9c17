"""AggregatorProcessor (consumers.aggregator.processor) without Kafka: decoded event batches in,
output records checked by decoding them; the changelog is a list per partition that a fake
``restore`` replays."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pytest
from aggregate_fixtures import (
    ACCOUNT,
    NOW_MS,
    REGION,
    T0,
    FakeInsights,
    compacted,
    concat,
    ct_record,
    decoded,
)

from consumers.aggregator.processor import AggregateRow, AggregatorProcessor, Settings, Topics
from pipeline.aggregates.cells import aggregate_key
from pipeline.aggregates.table import AGGREGATE
from pipeline.events.mapping import from_avro
from pipeline.events.partition import make_key
from pipeline.events.records import decode_record
from pipeline.events.wire import decode
from pipeline.health.record import decode_health
from pipeline.model import KafkaRecord, Unavailable

TOPICS = Topics(events="events", aggregates="aggs", insights="ins", health="health",
                state="state")
OTHER = "222222222222"
SILENT_AFTER_MS = 60_000
Log = list[tuple[str, bytes | None]]


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


class Changelog:
    """The state topic: records per partition, in write order; ``restore`` replays one."""

    def __init__(self, compact: bool = False) -> None:
        self.log: dict[int, Log] = {}
        self.compact = compact
        self.restores: list[int] = []

    def write(self, records: Iterable[KafkaRecord]) -> None:
        for r in records:
            assert r.topic == TOPICS.state and r.partition is not None and r.key is not None
            self.log.setdefault(r.partition, []).append((r.key.decode(), r.value))

    def restore(self, partition: int) -> Log:
        self.restores.append(partition)
        log = self.log.get(partition, [])
        return compacted(log) if self.compact else list(log)


def processor(changelog: Changelog, clock: Clock | None = None, *, lake: bool = True,
              grace_ms: int = 0, insights: dict[int, dict[str, Any]] | None = None,
              drain_health: Any = list) -> AggregatorProcessor:
    return AggregatorProcessor(
        TOPICS, changelog.restore,
        Settings(grace_ms=grace_ms, max_values=100, silent_after_ms=SILENT_AFTER_MS,
                 lake=lake),
        make_insights=(lambda: FakeInsights(emit=insights)) if insights is not None else None,
        drain_health=drain_health, clock=clock or Clock())


def batch(times_s: Iterable[float], partition: int = 0, first_offset: int = 0,
          **fields: Any) -> pa.Table:
    return decoded([ct_record(T0 + int(t * 1000), **fields) for t in times_s], partition,
                   first_offset)


def aggregates(outputs: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for o in outputs:
        if isinstance(o, KafkaRecord) and o.topic == TOPICS.aggregates:
            datum = decode_record(AGGREGATE, o.value)
            assert o.key == aggregate_key(datum).encode()
            out.append(datum)
    return out


def health(outputs: Iterable[Any]) -> list[tuple[str, str]]:
    out = []
    for o in outputs:
        if isinstance(o, KafkaRecord) and o.topic == TOPICS.health:
            datum = decode_health(o.value)
            assert o.key == f"aggregator|{datum['subject']}".encode()
            out.append((datum["status"], datum["subject"]))
    return out


# --- outputs --------------------------------------------------------------------------------

@pytest.mark.parametrize("lake", [True, False])
def test_closed_windows_become_aggregate_records_and_lake_rows(lake: bool) -> None:
    proc = processor(Changelog(), lake=lake)
    table = concat(batch([1, 2], first_offset=10),
                   batch([3], first_offset=12, error="AccessDenied"),
                   batch([61], first_offset=13))
    outputs = list(proc.process_batch(table))
    datums = aggregates(outputs)
    assert sorted((d["outcome"], d["count"], d["trigger_offset"]) for d in datums) == \
        [("AccessDenied", 1, 13), ("OK", 2, 13)]
    d = datums[0]
    assert (d["window_size"], d["window_start_ms"], d["account"], d["region"]) == \
        ("1m", T0, ACCOUNT, REGION)
    assert (d["event_source"], d["event_name"], d["identity_type"]) == \
        ("iam.amazonaws.com", "CreateUser", "IAMUser")
    assert (d["partition"], d["emitted_ms"], d["correction"]) == (0, NOW_MS, False)
    rows = [o for o in outputs if isinstance(o, AggregateRow)]
    if lake:
        assert [(r.partition, r.trigger_offset, r.datum) for r in rows] == \
            [(0, 13, d) for d in datums]
    else:
        assert rows == []
    assert proc.counters["windows"] == 2 and proc.counters["events"] == 4
    assert health(outputs) == []


def test_watermarks_are_per_events_partition() -> None:
    proc = processor(Changelog())
    table = concat(batch([1], partition=0), batch([1, 200], partition=1, account=OTHER))
    datums = aggregates(proc.process_batch(table))
    assert {(d["partition"], d["account"]) for d in datums} == {(1, OTHER)}
    assert [(d["window_start_ms"], d["trigger_offset"]) for d in datums] == [(T0, 1)]


def test_late_events_become_corrections_on_the_aggregates_topic() -> None:
    proc = processor(Changelog())
    list(proc.process_batch(batch([1, 61])))
    datums = aggregates(proc.process_batch(batch([5, 6], first_offset=2)))
    [d] = datums
    assert (d["correction"], d["count"], d["trigger_offset"]) == (True, 2, 2)
    assert aggregate_key(d).endswith("|correction|0:2")
    assert (proc.counters["corrections"], proc.counters["late_events"]) == (1, 2)


INSIGHT = {"eventVersion": "1.08", "eventTime": "2023-11-14T22:14:00Z", "awsRegion": REGION,
           "eventID": "insight-1", "eventType": "AwsCloudTrailInsight",
           "recipientAccountId": ACCOUNT, "sharedEventID": "shared-1",
           "eventCategory": "Insight",
           "insightDetails": {"state": "Start", "eventSource": "iam.amazonaws.com",
                              "eventName": "CreateUser", "insightType": "ApiCallRateInsight"}}


def test_insights_events_go_to_the_insights_topic_keyed_by_account_and_region() -> None:
    insight = INSIGHT
    proc = processor(Changelog(), insights={T0: insight})
    outputs = list(proc.process_batch(batch([1, 61])))
    [record] = [o for o in outputs if isinstance(o, KafkaRecord) and o.topic == TOPICS.insights]
    assert record.key == make_key(ACCOUNT, REGION)
    back = from_avro(decode(record.value or b""))
    assert back["eventType"] == "AwsCloudTrailInsight"
    assert back["insightDetails"] == insight["insightDetails"]
    assert proc.counters["insights"] == 1


def test_an_error_in_the_counting_is_unavailable_and_the_state_is_restored_again() -> None:
    changelog = Changelog()
    proc = processor(changelog)
    list(proc.process_batch(batch([1])))
    with pytest.raises(Unavailable):
        list(proc.process_batch(batch([2], first_offset=1).drop_columns(["eventTimeMs"])))
    list(proc.process_batch(batch([2], first_offset=1)))
    assert changelog.restores == [0, 0]


# --- the changelog ----------------------------------------------------------------------------

def test_before_commit_writes_each_partitions_changes_to_its_changelog_partition() -> None:
    proc = processor(Changelog(), insights={})
    list(proc.process_batch(concat(batch([1, 61]), batch([2], partition=2, account=OTHER))))
    records = list(proc.before_commit())
    assert {r.topic for r in records} == {TOPICS.state}
    keys = {(r.partition, (r.key or b"").decode().split("|")[0]) for r in records}
    assert {p for p, _ in keys} == {0, 2}
    assert {(0, k) for k in ("1m", "1h", "insights", "meta", "src", "fake")} <= keys
    assert (2, "src") in keys and (2, "meta") in keys
    assert list(proc.before_commit()) == []


STEPS = [([1, 2, 30], 0), ([61, 62, 3], 3), ([125, 4, 126], 6), ([200, 260, 7], 9),
         ([3700, 10], 12), ([3800, 3900], 14)]
"""(event seconds after T0, first offset) per batch: closes, late records, the hour."""


def _run(proc: AggregatorProcessor, changelog: Changelog, steps: list[tuple[list[int], int]],
         clock: Clock) -> list[Any]:
    out: list[Any] = []
    for times, first in steps:
        clock.now_ms += 20_000
        out += proc.process_batch(batch(times, first_offset=first))
        out += proc.tick(clock.now_ms)
        changelog.write(proc.before_commit())
    return out


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("cut", [1, 3, 5])
def test_a_rewind_restores_from_the_changelog_and_equals_an_uninterrupted_run(
        cut: int, compact: bool) -> None:
    clock, changelog = Clock(), Changelog()
    proc = processor(changelog, clock, insights={T0 + 60_000: INSIGHT})
    expected = _run(proc, changelog, STEPS, clock)
    assert aggregates(expected) and any(d["correction"] for d in aggregates(expected))

    clock, changelog = Clock(), Changelog(compact)
    proc = processor(changelog, clock, insights={T0 + 60_000: INSIGHT})
    before = _run(proc, changelog, STEPS[:cut], clock)
    times, first = STEPS[cut]
    list(proc.process_batch(batch(times, first_offset=first)))  # lost in the rewind
    proc.drop([(TOPICS.events, 0), (TOPICS.aggregates, 0)])
    after = _run(proc, changelog, STEPS[cut:], clock)
    assert changelog.restores == [0, 0]
    assert before + after == expected


# --- silent sources ---------------------------------------------------------------------------

A = f"{ACCOUNT}|{REGION}"
B = f"{OTHER}|{REGION}"


def test_a_silent_source_is_reported_once_and_its_return_once() -> None:
    clock = Clock()
    proc = processor(Changelog(), clock)
    list(proc.process_batch(concat(batch([1]), batch([1], first_offset=1, account=OTHER))))
    assert health(proc.tick(NOW_MS + SILENT_AFTER_MS - 1)) == []
    clock.now_ms = NOW_MS + 30_000
    list(proc.process_batch(batch([2], first_offset=2, account=OTHER)))
    assert health(proc.tick(NOW_MS + SILENT_AFTER_MS)) == [("source_silent", A)]
    assert health(proc.tick(NOW_MS + 2 * SILENT_AFTER_MS)) == [("source_silent", B)]
    assert health(proc.tick(NOW_MS + 3 * SILENT_AFTER_MS)) == []
    clock.now_ms = NOW_MS + 4 * SILENT_AFTER_MS
    assert health(proc.process_batch(batch([3], first_offset=3))) == [("source_resumed", A)]
    assert health(proc.process_batch(batch([4], first_offset=4))) == []
    assert health(proc.tick(clock.now_ms)) == []


def test_after_a_restart_downtime_is_not_silence_and_a_reported_silence_is_not_repeated(
        ) -> None:
    clock, changelog = Clock(), Changelog()
    proc = processor(changelog, clock)
    list(proc.process_batch(concat(batch([1]), batch([1], first_offset=1, account=OTHER))))
    clock.now_ms = NOW_MS + 30_000
    list(proc.process_batch(batch([2], first_offset=2, account=OTHER)))
    assert health(proc.tick(NOW_MS + SILENT_AFTER_MS)) == [("source_silent", A)]
    changelog.write(proc.before_commit())

    proc.drop([(TOPICS.events, 0)])
    clock.now_ms = NOW_MS + 10 * SILENT_AFTER_MS  # down for a while; B is restored first
    restart_ms = clock.now_ms
    list(proc.process_batch(batch([3], first_offset=3, account=OTHER)))
    assert health(proc.tick(restart_ms + SILENT_AFTER_MS - 1)) == []
    assert health(proc.tick(restart_ms + SILENT_AFTER_MS)) == [("source_silent", B)]
    clock.now_ms = restart_ms + 2 * SILENT_AFTER_MS
    assert health(proc.process_batch(batch([4], first_offset=4))) == [("source_resumed", A)]


def test_a_source_silent_across_a_rewind_is_still_reported() -> None:
    clock, changelog = Clock(), Changelog()
    proc = processor(changelog, clock)
    proc.assigned([(TOPICS.events, 0)])
    list(proc.process_batch(batch([1])))
    changelog.write(proc.before_commit())
    proc.drop([(TOPICS.events, 0)])  # e.g. an aborted transaction: the Runner rewinds
    proc.assigned([(TOPICS.events, 0)])  # ... and tells it what it still owns
    reported = [h for step in range(1, 6)
                for h in health(proc.tick(NOW_MS + step * SILENT_AFTER_MS))]
    assert reported == [("source_silent", A)]


def test_tick_passes_the_health_monitors_records_on() -> None:
    lag = KafkaRecord(TOPICS.health, b"lag", b"monitor|lag")
    proc = processor(Changelog(), drain_health=lambda: [lag])
    assert list(proc.tick(NOW_MS)) == [lag]


def test_top_calls_survive_partitions_closing_minutes_out_of_order() -> None:
    """Partition 0 runs ahead of partition 1, so partition 1's older minutes are emitted after
    newer ones: the kept minutes stay bounded and the newest complete minute is reported."""
    proc = processor(Changelog())
    list(proc.process_batch(batch([m * 60 for m in range(6)], partition=0)))
    list(proc.process_batch(batch([m * 60 for m in range(3)], partition=1)))
    minute, top = proc.top_calls(3)
    assert minute == T0 + 60_000  # partition 1's watermark (T0 + 2 min) limits it
    assert [count for _, count in top] == [2]  # one call from each partition
    list(proc.process_batch(batch([m * 60 for m in range(6, 30)], partition=0)))
    list(proc.process_batch(batch([m * 60 for m in range(3, 5)], partition=1)))
    assert proc.top_calls(3) == (None, [])  # partition 1's minutes are older than the kept
