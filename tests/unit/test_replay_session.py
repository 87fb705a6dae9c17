"""The replay run's pure decisions: the derived replay id, what --where keeps and in which
order, and the refusal of lake-only records for --to-topic."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.replay.cold import ColdResult
from pipeline.replay.filters import Filters
from pipeline.replay.hot import HotResult, ReplayError
from pipeline.replay.session import Request, _only_kafka_rows, _selected
from pipeline.replay.sources import Read

WINDOW = Filters(1_000, 2_000)


def test_the_same_command_has_the_same_replay_id_and_other_filters_another() -> None:
    same = Request(Filters(1_000, 2_000, account="111122223333"))
    assert same.the_replay_id("audit.events.v1") == Request(
        Filters(1_000, 2_000, account="111122223333")).the_replay_id("audit.events.v1")
    ids = {same.the_replay_id("audit.events.v1"), same.the_replay_id("other.topic"),
           Request(Filters(1_000, 2_001, account="111122223333")).the_replay_id("audit.events.v1"),
           Request(Filters(1_000, 2_000, account="111122223333", where="eventname = 'X'")
                   ).the_replay_id("audit.events.v1")}
    assert len(ids) == 4
    assert Request(WINDOW, replay_id="case-7").the_replay_id("audit.events.v1") == "case-7"


def table(ids: list[str], times: list[int], offsets: list[int]) -> pa.Table:
    return pa.table({"eventID": ids, "eventTimeMs": times, "eventName": ["A"] * len(ids),
                     "_partition": pa.array([0] * len(ids), pa.int32()),
                     "_offset": pa.array(offsets, pa.int64())})


def test_selected_rows_are_sorted_by_event_time_then_event_id() -> None:
    rows = table(["b", "a", "c"], [1_500, 1_500, 1_200], [0, 1, 2])
    assert _selected(rows, WINDOW)["eventID"].to_pylist() == ["c", "a", "b"]


def test_to_topic_refuses_rows_only_the_lake_holds_before_producing() -> None:
    hot = HotResult(table(["a"], [1_100], [5]))
    cold = ColdResult(table(["z"], [1_050], [1]))
    with pytest.raises(ReplayError, match="1 selected records are only in the lake"):
        _only_kafka_rows(Read(pa.concat_tables([hot.table, cold.table]), hot, cold))
    _only_kafka_rows(Read(hot.table, hot, ColdResult(table([], [], []))))  # nothing cold: fine
