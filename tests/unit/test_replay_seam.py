"""The seam: hot and cold rows merged into one stream, each (partition, offset) once."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from pipeline.replay.seam import merge


def rows(coords: list[tuple[int, int]], source: str) -> pa.Table:
    return pa.table({"eventID": [f"{source}-{p}-{o}" for p, o in coords],
                     "_partition": pa.array([p for p, _ in coords], pa.int32()),
                     "_offset": pa.array([o for _, o in coords], pa.int64())})


def coords(table: pa.Table) -> list[tuple[int, int]]:
    return list(zip(table["_partition"].to_pylist(), table["_offset"].to_pylist(), strict=True))


def test_overlap_is_dropped_from_the_cold_side_and_counted() -> None:
    hot = rows([(0, o) for o in range(10, 20)] + [(1, 5)], "hot")
    cold = rows([(0, o) for o in range(0, 15)] + [(1, 5), (2, 7)], "cold")
    merged, dropped = merge(hot, cold)
    assert dropped == 6  # offsets 10..14 of partition 0 and offset 5 of partition 1
    assert sorted(coords(merged)) == sorted({*coords(hot), *coords(cold)})
    ids = dict(zip(coords(merged), merged["eventID"].to_pylist(), strict=True))
    assert ids[(0, 12)] == "hot-0-12" and ids[(1, 5)] == "hot-1-5"  # the hot copy wins
    assert ids[(0, 3)] == "cold-0-3" and ids[(2, 7)] == "cold-2-7"


def test_sources_meeting_at_one_offset_merge_without_gap_or_duplicate() -> None:
    cold = rows([(p, o) for p in range(3) for o in range(0, 40)], "cold")
    hot = rows([(p, o) for p in range(3) for o in range(40, 90)], "hot")
    merged, dropped = merge(hot, cold)
    assert dropped == 0
    assert sorted(coords(merged)) == [(p, o) for p in range(3) for o in range(90)]


def test_a_coordinate_the_lake_holds_twice_is_kept_once() -> None:
    cold = rows([(0, 1), (0, 2), (0, 1), (3, 9), (3, 9)], "cold")
    merged, dropped = merge(pa.table({}), cold)  # lake only: no hot columns at all
    assert dropped == 2 and coords(merged) == [(0, 1), (0, 2), (3, 9)]


def test_random_overlaps_give_the_union_once() -> None:
    rng = random.Random(7)
    for _ in range(50):
        hot_set = {(rng.randrange(4), rng.randrange(60)) for _ in range(rng.randrange(40))}
        cold_list = [(rng.randrange(4), rng.randrange(60)) for _ in range(rng.randrange(80))]
        hot = rows(sorted(hot_set), "hot")
        merged, dropped = merge(hot, rows(cold_list, "cold"))
        union = hot_set | set(cold_list)
        assert sorted(coords(merged)) == sorted(union)
        assert dropped == len(cold_list) - len(set(cold_list) - hot_set)


def test_empty_sides_and_mismatched_columns() -> None:
    hot = rows([(0, 1)], "hot")
    assert merge(hot, rows([], "cold")) == (hot, 0)
    merged, dropped = merge(rows([], "hot"), rows([(0, 1)], "cold"))
    assert coords(merged) == [(0, 1)] and dropped == 0
    with pytest.raises(ValueError, match="columns differ"):
        merge(hot, rows([(0, 2)], "cold").drop_columns(["eventID"]))
