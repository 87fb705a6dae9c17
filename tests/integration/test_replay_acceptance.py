"""Issue 11 acceptance: ``trailpipe replay`` (the CLI, as a process) against independent clients
on the real broker: kcat ``-o s@(T1-L) -o e@(T2+L)`` whose values our Avro decoder reads, and
``lake query`` over a lake of the same records (same eventIDs); late records that kcat's
end-time rule drops; a consumer group's committed offsets as Kafka's own
``kafka-consumer-groups --describe`` prints them, unchanged by a replay.

Two runs giving byte-identical files and output hashes, and ``replay verify`` failing after one
flipped byte of the file or of the manifest, are covered by tests/integration/test_replay.py
(``test_window_replay_equals_the_python_predicate_byte_identical_twice``,
``test_signed_manifest_then_verify_passes_and_one_flipped_byte_fails``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from replay_kit import (
    KEEP,
    Row,
    describe_group,
    event_ids,
    event_ms,
    file_lake,
    iso_z,
    kcat,
    lake_event_ids,
    produce_rows,
    summary_of,
    timed_corpus,
    topic_for_module,
    trailpipe,
)

from pipeline.replay.config import ReplayConfig

pytestmark = pytest.mark.integration
PARTITIONS = 3
MINUTE_MS = 60_000
LATENESS_MS = ReplayConfig().lateness_ms  # the CLI's default L
LATE_ID = "late-ingest-0001"


@pytest.fixture(scope="module")
def window(kafka: Any) -> Iterator[dict[str, Any]]:
    """The timed corpus appended in ingest order as our producers append it: each record's
    Kafka timestamp is its ingest time, 1 to 10 min after its event time (so records are
    appended after records of later event time), plus one record delivered 21 min after its
    event time, just before the window end, whose Kafka timestamp is past the window end."""
    records = timed_corpus()
    times = sorted(event_ms(r) for r in records)
    start_ms, end_ms = times[len(times) // 5], times[4 * len(times) // 5]
    region = Counter(r.get("awsRegion") for r in records if not r.get("errorCode")
                     and start_ms <= event_ms(r) < end_ms).most_common(1)[0][0]
    base = next(r for r in records if r.get("awsRegion") == region and not r.get("errorCode"))
    late = {**base, "eventID": LATE_ID, "eventTime": iso_z(end_ms - MINUTE_MS)}
    rows: list[Row] = [(r, event_ms(r) + MINUTE_MS + (i * 7_919) % (9 * MINUTE_MS))
                       for i, r in enumerate(records)]
    rows.append((late, end_ms + 20 * MINUTE_MS))
    with topic_for_module(kafka.client_config(), "replay-acceptance", PARTITIONS) as topic:
        produce_rows(kafka.client_config(), topic, sorted(rows, key=lambda row: row[1]))
        yield {"topic": topic, "bootstrap": kafka.bootstrap, "start_ms": start_ms,
               "end_ms": end_ms, "region": region, "count": len(rows)}


def replay_args(data: dict[str, Any], start_ms: int, end_ms: int) -> list[str]:
    return ["replay", "--from", iso_z(start_ms), "--to", iso_z(end_ms),
            "--topic", data["topic"], "--bootstrap", data["bootstrap"]]


def test_replay_equals_kcat_s_at_t1_less_l_e_at_t2_plus_l_and_lake_query(
        window: dict[str, Any], tmp_path: Path) -> None:
    t1, t2, region = window["start_ms"], window["end_ms"], window["region"]
    out = tmp_path / "window.jsonl"
    summary_of(trailpipe(*replay_args(window, t1, t2), "--region", region, "--no-error",
                         "--out", str(out)))
    replayed = event_ids(out.read_bytes())
    assert LATE_ID in replayed and len(replayed) > 20

    raw = kcat(window["bootstrap"], window["topic"], f"s@{t1 - LATENESS_MS}",
               f"e@{t2 + LATENESS_MS}")
    kept = [d for d in (r.datum() for r in raw)
            if d["eventTimeMs"] is not None and t1 <= d["eventTimeMs"] < t2
            and d.get("awsRegion") == region and not d.get("errorCode")]
    assert replayed == sorted(str(d.get("eventID") or "") for d in kept)

    lake = file_lake(kcat(window["bootstrap"], window["topic"], "beginning"), window["topic"],
                     tmp_path / "lake")
    where = (f"_event_time_ms >= {t1} AND _event_time_ms < {t2} AND awsregion = '{region}' "
             "AND coalesce(errorcode, '') = ''")
    assert lake_event_ids(lake, where) == replayed


def test_late_records_are_replayed_where_kcat_end_time_rule_drops_them(
        kafka: Any, make_topic: Callable[..., str], tmp_path: Path) -> None:
    t1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    t2 = t1 + 60 * MINUTE_MS
    base = next(r for r in timed_corpus() if not r.get("errorCode"))

    def row(event_id: str, event_time_ms: int, timestamp_ms: int) -> Row:
        return {**base, "eventID": event_id, "eventTime": iso_z(event_time_ms)}, timestamp_ms

    rows = [row("early", t1 + MINUTE_MS, t1 + 3 * MINUTE_MS),
            row("after-window", t2 + 5 * MINUTE_MS, t2 + 6 * MINUTE_MS),
            # in the window, delivered 11 min late: appended after a later event, and its
            # timestamp (ingest time) is past T2
            row("late", t2 - MINUTE_MS, t2 + 10 * MINUTE_MS),
            row("hours-later", t2 + 2 * LATENESS_MS, t2 + 2 * LATENESS_MS),
            # in the window, redelivered hours later: past T2 + L too
            row("redelivered", t1 + 5 * MINUTE_MS, t2 + 2 * LATENESS_MS + MINUTE_MS)]
    topic = make_topic("replay-late", 1, **KEEP)
    produce_rows(kafka.client_config(), topic, rows)
    out = tmp_path / "late.jsonl"
    data = {"topic": topic, "bootstrap": kafka.bootstrap}
    summary = summary_of(trailpipe(*replay_args(data, t1, t2), "--out", str(out)))
    assert event_ids(out.read_bytes()) == ["early", "late", "redelivered"]
    assert summary["scanned"] == len(rows)  # read up to the high watermark

    def kcat_ids(end_ms: int) -> tuple[list[int], list[str]]:
        raw = kcat(kafka.bootstrap, topic, f"s@{t1 - LATENESS_MS}", f"e@{end_ms}")
        ids = [r.datum()["eventID"] for r in raw if t1 <= r.datum()["eventTimeMs"] < t2]
        return [r.offset for r in raw], sorted(ids)

    # kcat stops each partition at the first record whose *Kafka timestamp* reaches e@
    assert kcat_ids(t2) == ([0], ["early"])
    assert kcat_ids(t2 + LATENESS_MS) == ([0, 1, 2], ["early", "late"])


def commit_half_way(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """Commit, for ``group``, half of each partition's high watermark (as a consumer that has
    read half the topic would); returns the committed offsets."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
             for p in range(PARTITIONS)}
    committed = {p: high // 2 for p, high in highs.items()}
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()],
                    asynchronous=False)
    consumer.close()
    return committed


@pytest.fixture(params=["file", "topic"])
def destination(request: pytest.FixtureRequest, kafka: Any, tmp_path: Path
                ) -> Iterator[list[str]]:
    """Where the replay writes: a file, or a replay.* topic (deleted afterwards)."""
    if request.param == "file":
        yield ["--out", str(tmp_path / "all.jsonl")]
        return
    replay_id = f"acceptance-{uuid.uuid4().hex[:8]}"
    target, admin = f"replay.{replay_id}.events.v1", AdminClient(kafka.client_config())
    # created here, well before the replay: right after a create the broker may not lead the
    # new partitions yet (the replay's own create races its first watermark request)
    admin.create_topics([NewTopic(target, PARTITIONS, 1, config=KEEP)])[target].result(30)
    yield ["--to-topic", "replay", "--replay-id", replay_id]
    admin.delete_topics([target], operation_timeout=30)[target].result(timeout=30)


def test_a_replay_leaves_committed_group_offsets_and_the_group_list_unchanged(
        window: dict[str, Any], destination: list[str]) -> None:
    bootstrap, topic = window["bootstrap"], window["topic"]
    group = f"acceptance-analytics-{uuid.uuid4().hex[:8]}"
    committed = commit_half_way(bootstrap, topic, group)
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def groups() -> set[str]:
        return {g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid}

    before, groups_before = describe_group(bootstrap, group), groups()
    assert [(row[1], int(row[2]), int(row[3])) for row in before] == [
        (topic, p, o) for p, o in sorted(committed.items())]
    summary = summary_of(trailpipe(*replay_args(window, 0, 4_102_444_800_000), *destination))
    assert summary["scanned"] == window["count"]  # every partition read past the commits
    assert describe_group(bootstrap, group) == before
    assert groups() == groups_before
    assert not [g for g in groups_before if g.startswith("trailpipe-replay")]
