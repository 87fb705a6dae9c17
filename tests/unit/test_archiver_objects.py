"""The archiver's objects: the columnar RowBuffer and deterministic Parquet objects (pure)."""

from __future__ import annotations

import io
import random
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from consumers.archiver.objects import (
    RowBuffer,
    build_objects,
    effective_time_ms,
    hive_keys,
    partition_tables,
)
from consumers.archiver.parquet import LAYOUT, OLD_LAYOUT, Layout
from pipeline.events import IngestMeta, to_avro
from pipeline.lake.columns import LAKE_SCHEMA, to_datums, to_table
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.layout import HOUR_MS, object_key
from producers.generator.engine import Generator

TOPIC = "audit.events.v1"
CFG = ArchiverConfig()
_GEN = Generator(11, 3, 2, start_ms=1_764_201_000_000, error_rate=0.05, scenarios=(),
                 events_per_second=0.5, scenario_every=5000)  # ~2 s apart: spans hours
DATUMS = [to_avro(r, ingest=IngestMeta(1_764_201_000_000 + i, "gen", "unit", f"g#{i}"))
          for i, r in enumerate(_GEN.records(3000))]


def rows(lo: int, hi: int, *, partition: int = 2, step: int = 1) -> pa.Table:
    """Lake rows of DATUMS[lo:hi] at offsets ``lo*step, (lo+1)*step, ...``."""
    return to_table(DATUMS[lo:hi], partition=partition,
                    offsets=[i * step for i in range(lo, hi)],
                    timestamps_ms=[1000 + i for i in range(lo, hi)])


def offsets(table: pa.Table) -> list[int]:
    return [int(o) for o in table["_offset"].to_pylist()]


def test_row_buffer_appends_cuts_and_drops_on_whole_columns() -> None:
    buf = RowBuffer(2)
    assert buf.count() == 0 and buf.cut_index(10) == 0 and buf.head(5).num_rows == 0
    with pytest.raises(IndexError):
        buf.first_offset()
    buf.append_table(rows(0, 10, step=3), 100)   # offsets 0, 3, ..., 27
    buf.append_table(rows(10, 10, step=3), 7)    # empty: ignored, size too
    buf.append_table(rows(10, 25, step=3), 300)  # 30 ... 72
    assert buf.count() == 25 and buf.size == 400
    assert (buf.first_offset(), buf.last_offset()) == (0, 72)
    every = list(range(0, 75, 3))
    for offset in (-1, 0, 1, 27, 28, 30, 31, 72, 73, 1000):
        assert buf.cut_index(offset) == sum(o < offset for o in every), offset
    assert offsets(buf.head(12)) == every[:12]
    assert buf.head(12).schema == LAKE_SCHEMA
    buf.drop_below(31)  # the whole first table and one row of the second
    assert buf.count() == 14 and buf.first_offset() == 33 and offsets(buf.head(99)) == every[11:]
    assert buf.size == 300 * 14 // 15
    buf.drop_below(33)
    assert buf.count() == 14
    buf.drop_below(1000)
    assert buf.count() == 0 and buf.size == 0 and buf.cut_index(5) == 0


def test_row_buffer_rejects_what_breaks_offset_order() -> None:
    buf = RowBuffer(2)
    buf.append_table(rows(0, 10), 1)
    with pytest.raises(ValueError):
        buf.append_table(rows(5, 12), 1)  # overlaps
    with pytest.raises(ValueError):
        buf.append_table(pa.concat_tables([rows(20, 22), rows(12, 14)]), 1)  # not ascending
    with pytest.raises(ValueError):
        buf.append_table(rows(20, 22).drop_columns(["_offset"]), 1)
    assert buf.count() == 10 and buf.last_offset() == 9


def test_partition_tables_splits_by_kafka_partition_keeping_row_order() -> None:
    mixed = pa.concat_tables([rows(0, 5, partition=1), rows(5, 9, partition=0),
                              rows(9, 12, partition=1)])
    parts = partition_tables(mixed)
    assert [(p, offsets(t)) for p, t in parts] == [(0, [5, 6, 7, 8]),
                                                  (1, [0, 1, 2, 3, 4, 9, 10, 11])]
    single = rows(0, 4)
    assert [(p, t.to_pydict()) for p, t in partition_tables(single)] == [(2, single.to_pydict())]
    assert partition_tables(rows(0, 0)) == []


def test_partition_tables_filters_when_partitions_interleave_finely() -> None:
    table = pa.concat_tables([rows(i, i + 1, partition=i % 2) for i in range(600)])
    parts = partition_tables(table)  # 600 runs: more than MAX_RUNS, filtered per partition
    assert [(p, offsets(t)) for p, t in parts] == [(0, list(range(0, 600, 2))),
                                                  (1, list(range(1, 600, 2)))]


def test_every_row_in_exactly_one_object_keyed_by_its_hive_partition() -> None:
    table = rows(0, 3000, step=2)
    objects = build_objects(table, topic=TOPIC, partition=2, cfg=CFG)
    keys = hive_keys(table)
    expected = Counter(zip(*(keys[c].to_pylist() for c in ("account", "region", "hour")),
                           strict=True))
    assert len(objects) == len(expected) > 6  # several accounts, regions and hours
    assert len({o.key for o in objects}) == len(objects)
    seen: list[int] = []
    for obj in objects:
        part = pq.read_table(io.BytesIO(obj.data))
        assert part.schema.remove_metadata() == LAKE_SCHEMA
        got = offsets(part)
        seen += got
        hive = hive_keys(part)
        (account, region, hour), = set(zip(*(hive[c].to_pylist() for c in (
            "account", "region", "hour")), strict=True))
        assert obj.key == object_key(account, region, hour * HOUR_MS, TOPIC, 2, min(got))
        assert obj.records == part.num_rows == expected[(account, region, hour)]
        assert (obj.first_offset, obj.last_offset) == (min(got), max(got))
        times = effective_time_ms(part).to_pylist()
        assert (obj.oldest_event_time_ms, obj.newest_event_time_ms) == (min(times), max(times))
        meta = pq.read_metadata(io.BytesIO(obj.data)).metadata
        assert meta[b"trailpipe.first_offset"] == str(min(got)).encode()
        assert meta[b"trailpipe.last_offset"] == str(max(got)).encode()
        assert meta[b"trailpipe.partition"] == b"2" and meta[b"trailpipe.topic"] == TOPIC.encode()
    assert sorted(seen) == offsets(table)


def test_rows_read_back_unchanged_in_layout_order() -> None:
    table = rows(0, 1500)
    by_offset = {d["_offset"]: d for d in table.to_pylist()}
    for obj in build_objects(table, topic=TOPIC, partition=2, cfg=CFG):
        part = pq.read_table(io.BytesIO(obj.data))
        assert all(by_offset[r["_offset"]] == r for r in part.to_pylist())
        arn = pc.struct_field(part["useridentity"], "arn").to_pylist()
        non_null = [a for a in arn if a is not None]
        assert non_null == sorted(non_null)  # the first sort key; nulls last
        assert arn[: len(non_null)] == non_null
    back = [d for obj in build_objects(table, topic=TOPIC, partition=2, cfg=CFG)
            for d in to_datums(pq.read_table(io.BytesIO(obj.data)))]
    assert sorted(map(repr, back)) == sorted(map(repr, to_datums(table)))


@pytest.mark.parametrize("layout", [LAYOUT, OLD_LAYOUT], ids=["default", "old"])
def test_same_rows_same_keys_and_bytes_however_chunked(layout: Layout) -> None:
    table = rows(0, 2000)
    once = build_objects(table, topic=TOPIC, partition=2, cfg=CFG, layout=layout)
    assert build_objects(table, topic=TOPIC, partition=2, cfg=CFG,
                         layout=layout) == once
    rng = random.Random(5)
    cuts = sorted(rng.sample(range(1, 2000), 30))
    chunked = pa.concat_tables([table.slice(a, b - a)
                                for a, b in zip([0, *cuts], [*cuts, 2000], strict=True)])
    assert chunked.column("_offset").num_chunks == 31
    assert build_objects(chunked, topic=TOPIC, partition=2, cfg=CFG,
                         layout=layout) == once
    buf = RowBuffer(2)
    for a, b in zip([0, *cuts], [*cuts, 2000], strict=True):
        buf.append_table(rows(a, b), 1)
    assert build_objects(buf.head(buf.count()), topic=TOPIC, partition=2, cfg=CFG,
                         layout=layout) == once


def test_settings_change_bytes_not_keys_and_empty_input_has_no_objects() -> None:
    table = rows(0, 500)
    a = build_objects(table, topic=TOPIC, partition=2, cfg=CFG)
    b = build_objects(table, topic=TOPIC, partition=2, cfg=CFG.model_copy(
        update={"zstd_level": 9}))
    assert [o.key for o in a] == [o.key for o in b] and [o.data for o in a] != [o.data for o in b]
    assert build_objects(rows(0, 0), topic=TOPIC, partition=2, cfg=CFG) == []
