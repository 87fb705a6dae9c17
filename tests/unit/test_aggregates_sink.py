"""AggregatesSink (consumers.aggregator.sink) on a FileStore lake in tmp_path: one object per
(window size, date, events partition) named by the least trigger offset; retries overwrite."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from consumers.aggregator.processor import AggregateRow
from consumers.aggregator.sink import AggregatesSink
from pipeline.aggregates.cells import aggregate_datum
from pipeline.lake.store import FileStore, ObjectInfo

DAY1_MS = 1_700_006_400_000  # 2023-11-15T00:00:00Z
DAY0_MS = DAY1_MS - 3_600_000  # 2023-11-14T23:00:00Z
SIZES_MS = {"1m": 60_000, "1h": 3_600_000}


def agg_row(size: str, start_ms: int, trigger: int, partition: int = 0,
            event_name: str = "CreateUser") -> AggregateRow:
    cell = {"start": start_ms, "account": "111111111111", "region": "us-east-1",
            "event_source": "iam.amazonaws.com", "event_name": event_name, "outcome": "OK",
            "identity_type": "IAMUser", "count": trigger + 1,
            "principal_values": ["arn:aws:iam::111111111111:user/alice"],
            "principal_counts": [trigger + 1], "source_ip_values": [], "source_ip_counts": []}
    datum = aggregate_datum(cell, size=size, size_ms=SIZES_MS[size], partition=partition,
                            trigger_offset=trigger, correction=False,
                            watermark_ms=start_ms + SIZES_MS[size], emitted_ms=0,
                            max_values=10)
    return AggregateRow(datum)


def key(size: str, date: str, partition: int, first: int) -> str:
    return f"aggregates/window_size={size}/date={date}/p{partition}-{first:020d}.parquet"


def objects(store: FileStore) -> dict[str, list[dict[str, Any]]]:
    return {o.key: pq.read_table(io.BytesIO(store.get(o.key))).to_pylist()
            for o in store.list("aggregates/")}


ROWS = [agg_row("1m", DAY0_MS + 120_000, 7), agg_row("1m", DAY0_MS, 5),
        agg_row("1m", DAY1_MS, 9), agg_row("1h", DAY0_MS, 6),
        agg_row("1m", DAY0_MS + 60_000, 3, partition=1),
        agg_row("1m", DAY0_MS + 60_000, 8, event_name="DeleteUser")]


def _flushed(store: FileStore, rows: list[AggregateRow]) -> AggregatesSink:
    sink = AggregatesSink(store)
    for r in rows:
        sink.add(r, None)
    sink.flush()
    return sink


def test_one_object_per_size_date_and_partition_named_by_the_least_trigger(
        tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    sink = _flushed(store, ROWS)
    found = objects(store)
    assert set(found) == {key("1m", "2023-11-14", 0, 5), key("1m", "2023-11-15", 0, 9),
                          key("1h", "2023-11-14", 0, 6), key("1m", "2023-11-14", 1, 3)}
    assert sorted(r["trigger_offset"] for r in found[key("1m", "2023-11-14", 0, 5)]) == [5, 7, 8]
    for r in ROWS:  # every row, complete, in exactly one object
        [holder] = [k for k, rows in found.items() if r.datum in rows]
        assert f"window_size={r.datum['window_size']}/" in holder
    assert (sink.objects_written, sink.rows_written) == (4, len(ROWS))


def test_a_retry_overwrites_the_same_objects(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    _flushed(store, ROWS)
    first = objects(store)
    _flushed(store, ROWS)  # the cycle re-read after an aborted transaction
    assert objects(store) == first
    longer = [*ROWS, agg_row("1m", DAY0_MS + 180_000, 11)]  # the retry read further
    _flushed(store, longer)
    again = objects(store)
    assert set(again) == set(first)
    assert len(again[key("1m", "2023-11-14", 0, 5)]) == 4


def test_discard_drops_what_was_not_flushed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    sink = AggregatesSink(store)
    sink.add(ROWS[0], None)
    sink.discard()
    sink.flush()
    assert objects(store) == {} and sink.objects_written == 0
    sink.add(ROWS[1], None)
    sink.flush()
    assert list(objects(store)) == [key("1m", "2023-11-14", 0, 5)]


def test_only_aggregate_rows_are_taken(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        AggregatesSink(FileStore(tmp_path)).add(ROWS[0].datum, None)


class _Down(FileStore):
    def head(self, key: str) -> ObjectInfo | None:
        raise OSError("lake down")


def test_healthcheck_reports_an_unreachable_lake_without_raising(tmp_path: Path) -> None:
    assert AggregatesSink(FileStore(tmp_path)).healthcheck()
    assert not AggregatesSink(_Down(tmp_path)).healthcheck()
