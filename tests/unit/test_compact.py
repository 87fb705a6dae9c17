"""lake compact, the pure parts: keys, planning, intents, merging and splitting."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.lake.compact.merge import describe, merge, split_sizes
from pipeline.lake.compact.model import CompactConfig, PartitionResult, Summary
from pipeline.lake.compact.plan import (
    CompactionError,
    Intent,
    LakeFile,
    hour_partitions,
    output_key,
    parse_file,
    plan_partition,
    unit_id,
)
from pipeline.lake.layout import object_key
from pipeline.lake.store import ObjectInfo

PART = "events/account=111/region=eu-west-1/date=2024-03-10/hour=08"
H8 = 1710057600000  # 2024-03-10T08:00Z


def table(rows: list[tuple[int, int]], tag: str = "") -> pa.Table:
    return pa.table({"eventid": [f"{tag}{p}-{o}" for p, o in rows],
                     "_partition": pa.array([p for p, _ in rows], pa.int32()),
                     "_offset": pa.array([o for _, o in rows], pa.int64())})


def parquet(t: pa.Table) -> bytes:
    out = pa.BufferOutputStream()
    pq.write_table(t, out)
    return bytes(out.getvalue().to_pybytes())


def test_keys_parse_and_compacted_keys_cannot_be_archiver_keys():
    key = object_key("111", "eu-west-1", H8, "audit.events.v1", 3, 42)
    f = parse_file(ObjectInfo(key, 10, ""))
    assert f == LakeFile(key, 10, "audit.events.v1", 3, 42)
    uid = unit_id([key, "b"])
    assert uid == unit_id(["b", key]) and len(uid) == 16
    out = output_key(PART, "audit.events.v1", uid, 7)
    assert out == f"{PART}/audit.events.v1+compacted+{uid}+007.parquet"
    assert parse_file(ObjectInfo(out, 5, "")) == LakeFile(out, 5, "audit.events.v1")
    assert parse_file(ObjectInfo(f"{PART}/notes.txt", 5, "")) is None
    # An archiver key's second field is a partition number: a topic named "compacted"
    # still gives a different shape from compacted keys.
    other = object_key("111", "eu-west-1", H8, "compacted", 0, 0)
    assert parse_file(ObjectInfo(other, 1, "")).kafka_partition == 0


def test_plan_groups_small_objects_per_topic_in_offset_order():
    def f(topic: str, p: int, o: int, size: int) -> LakeFile:
        return LakeFile(f"{PART}/{topic}+{p}+{o:019d}.parquet", size, topic, p, o)

    files = [f("a", 1, 0, 10), f("a", 0, 50, 10), f("a", 0, 0, 10), f("a", 0, 99, 1000),
             f("b", 0, 0, 10)]
    units = plan_partition(PART, files, small_bytes=100, min_objects=2, max_input_bytes=10**6)
    assert len(units) == 1  # topic b has one small object; the big one is left alone
    assert [(x.kafka_partition, x.first_offset) for x in units[0].inputs] == [(0, 0), (0, 50),
                                                                              (1, 0)]
    assert plan_partition(PART, files, small_bytes=100, min_objects=4,
                          max_input_bytes=10**6) == []
    # Cut by max_input_bytes; a unit of one object is dropped.
    cut = plan_partition(PART, files, small_bytes=100, min_objects=2, max_input_bytes=20)
    assert [len(u.inputs) for u in cut] == [2]


def test_intent_round_trips():
    intent = Intent("file:///x", PART, "t", ("k1", "k2"), (("o0", 3), ("o1", 2)), 6, 5)
    assert Intent.from_json(intent.to_json()) == intent
    assert intent.key.startswith("_compactions/account=111/region=eu-west-1/date=2024-03-10/")
    assert (intent.by, intent.rows_out) == (("o0", "o1"), 5)
    with pytest.raises(ValueError):
        Intent.from_json(b'{"version": 2}')


def test_merge_sorts_and_keeps_the_first_row_of_each_coordinate():
    a = table([(0, 5), (0, 6), (1, 1)], "a")
    b = table([(0, 6), (0, 7), (0, 1)], "b")
    merged = merge([parquet(a), parquet(b)])
    assert merged.rows_in == 6
    rows = merged.table.to_pylist()
    assert [(r["_partition"], r["_offset"]) for r in rows] == [(0, 1), (0, 5), (0, 6), (0, 7),
                                                               (1, 1)]
    assert rows[2]["eventid"] == "a0-6"  # the first object's row is kept


def test_merge_keeps_rows_without_coordinates_and_rejects_objects_without_them():
    t = pa.table({"eventid": ["x", "y"], "_partition": pa.array([None, None], pa.int32()),
                  "_offset": pa.array([None, None], pa.int64())})
    assert merge([parquet(t)]).table.num_rows == 2
    with pytest.raises(CompactionError):
        merge([parquet(pa.table({"eventid": ["x"]}))])


def test_split_sizes():
    assert split_sizes(0, 0, 10) == []
    assert split_sizes(10, 5, 10) == [10]
    assert split_sizes(10, 25, 10) == [4, 3, 3]
    assert split_sizes(2, 10**9, 10) == [1, 1]


def test_describe_uses_coordinates_and_falls_back_to_the_hour():
    t = table([(2, 10), (2, 12)])
    d = describe("file:///x", f"{PART}/a.parquet", b"data", t, topic="t", delivered_at_ms=9)
    assert (d.partition, d.first_offset, d.last_offset, d.records) == (2, 10, 12, 2)
    assert (d.oldest_event_time_ms, d.newest_event_time_ms) == (H8, H8 + 3_599_999)
    mixed = describe("file:///x", f"{PART}/a.parquet", b"", table([(0, 1), (1, 0)]),
                     topic="t", delivered_at_ms=9)
    assert (mixed.partition, mixed.first_offset, mixed.last_offset) == (-1, 0, 1)


def test_hour_partitions_and_config_defaults():
    infos = [ObjectInfo(f"{PART}/a.parquet", 1, ""), ObjectInfo(f"{PART}/x/b.parquet", 1, ""),
             ObjectInfo("events/other.parquet", 1, "")]
    assert list(hour_partitions(infos)) == [PART]
    cfg = CompactConfig()
    assert (cfg.target_object_bytes, cfg.min_objects, cfg.small_bytes) == (128 << 20, 2, 64 << 20)
    s = Summary("2024-03-10", False, [PartitionResult(PART, 4, 1, 4, 1, 10, 8)])
    assert s.totals()["duplicates_dropped"] == 2 and s.to_dict()["ok"]
