"""The cold path: when the lake is read, and lake rows as the hot path's rows (same canonical
bytes for the messy corpus), pruned to the window, partitions and offsets asked for."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest

from consumers.archiver.objects import build_objects
from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.lake.columns import lake_table
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.layout import HOUR_MS
from pipeline.replay.canonical import canonical_records
from pipeline.replay.cold import (
    cold_needed,
    cold_scope,
    describe_cold,
    list_cold,
    object_coordinates,
    read_cold,
)
from pipeline.replay.filters import Filters, account_column, mask
from pipeline.replay.lake_rows import decoded_table
from pipeline.replay.plan import PartitionRange, Plan

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
RECORDS = [json.loads(line) for p in sorted(CORPUS.glob("*/records.jsonl"))
           for line in p.read_text().splitlines() if line.strip()]
TOPIC = "audit.events.v1"
PARTITIONS = 3


def _hot() -> pa.Table:
    """The corpus as the hot path holds it: decoded from the wire, record i at partition
    i % 3, offset i // 3."""
    decoded = events_decoder(Config())([wire.encode(to_avro(r, ingest=INGEST)) for r in RECORDS])
    assert not decoded.errors
    n = decoded.table.num_rows
    table = decoded.table.append_column("_partition", pa.array([i % PARTITIONS for i in range(n)],
                                                               pa.int32()))
    return table.append_column("_offset", pa.array([i // PARTITIONS for i in range(n)],
                                                   pa.int64()))


HOT = _hot()
_SPAN = pc.min_max(HOT["eventTimeMs"]).as_py()
EVERYTHING = Filters(_SPAN["min"], _SPAN["max"] + 1)
"""A window holding every corpus record with an event time."""


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archiver's objects of HOT (plus one object of another topic) under events/."""
    root = tmp_path_factory.mktemp("lake")
    stamped = HOT.append_column("_timestamp_ms", pa.array(range(HOT.num_rows), pa.int64()))
    rows = lake_table(stamped)
    for topic in (TOPIC, "other.events"):
        for p in range(PARTITIONS):
            part = rows.filter(pc.equal(rows["_partition"], p))
            for obj in build_objects(part, topic=topic, partition=p, cfg=ArchiverConfig()):
                path = root / obj.key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(obj.data)
    return root


def read(lake: Path, filters: Filters, **kwargs: Any) -> Any:
    return read_cold(pafs.LocalFileSystem(), str(lake / "events"), TOPIC, filters, **kwargs)


def test_lake_rows_convert_back_to_the_decoded_table_exactly() -> None:
    stamped = HOT.append_column("_timestamp_ms", pa.array(range(HOT.num_rows), pa.int64()))
    back = decoded_table(lake_table(stamped))
    assert back.schema.equals(HOT.schema)
    assert back.equals(HOT)


@pytest.fixture(scope="module")
def full(lake: Path) -> Any:
    return read(lake, EVERYTHING)


def test_lake_read_gives_the_hot_paths_canonical_bytes_for_the_corpus(full: Any) -> None:
    result = full
    hot = HOT.filter(mask(HOT, EVERYTHING))
    assert hot.num_rows == HOT.num_rows - HOT["eventTimeMs"].null_count > 500
    assert canonical_records(result.table) == canonical_records(hot)
    assert result.rows_scanned == HOT.num_rows  # every object of the topic, no other topic's
    assert all(o.key.startswith("events/account=") and f"/{TOPIC}+" in o.key
               for o in result.objects)
    assert result.candidates == len(result.objects) and result.complete


def _busiest_hour() -> tuple[str, str, int]:
    """(account, region, hour start) holding the most corpus records."""
    accounts = account_column(HOT).to_pylist()
    regions = HOT["awsRegion"].to_pylist()
    times = HOT["eventTimeMs"].to_pylist()
    counts = Counter((a, r, t - t % HOUR_MS) for a, r, t in zip(accounts, regions, times,
                                                                strict=True)
                     if a and r and t is not None)
    return counts.most_common(1)[0][0]


def test_targeted_read_lists_and_reads_only_that_partitions_objects(lake: Path, full: Any
                                                                   ) -> None:
    account, region, hour_ms = _busiest_hour()
    targeted = Filters(hour_ms, hour_ms + HOUR_MS, account=account, region=region)
    result = read(lake, targeted)
    assert canonical_records(result.table) == canonical_records(HOT.filter(mask(HOT, targeted)))
    assert result.table.num_rows > 0
    prefix = f"events/account={account}/region={region}/"
    assert result.objects and all(o.key.startswith(prefix) for o in result.objects)
    assert len(result.objects) <= PARTITIONS < len(full.objects)
    assert result.listed < full.listed / 10  # the listing was pruned, not filtered after
    assert result.rows_scanned < full.rows_scanned


def test_partitions_and_offset_bounds_prune_objects_and_rows(lake: Path) -> None:
    below = {1: 100}
    result = read(lake, EVERYTHING, partitions={1, 2}, offsets_below=below)
    got = result.table
    assert set(got["_partition"].to_pylist()) == {1, 2}
    ones = pc.filter(got["_offset"], pc.equal(got["_partition"], 1)).to_pylist()
    assert ones and max(ones) < 100
    want = HOT.filter(pc.and_(mask(HOT, EVERYTHING), pc.and_(
        pc.not_equal(HOT["_partition"], 0),
        pc.or_(pc.not_equal(HOT["_partition"], 1), pc.less(HOT["_offset"], 100)))))
    assert canonical_records(got) == canonical_records(want)
    assert all(object_coordinates(o.key)[2] < 100 for o in result.objects  # type: ignore[index]
               if object_coordinates(o.key)[1] == 1)  # type: ignore[index]


def test_dry_run_describes_the_objects_a_read_reads(lake: Path) -> None:
    account, region, hour_ms = _busiest_hour()
    targeted = Filters(hour_ms, hour_ms + HOUR_MS, account=account, region=region)
    fs = pafs.LocalFileSystem()
    listing = list_cold(fs, str(lake / "events"), TOPIC, targeted)
    plan = describe_cold(fs, str(lake / "events"), listing)
    result = read(lake, targeted)
    assert [(o["key"], o["size_bytes"]) for o in plan["objects"]] == [
        (o.key, o.size_bytes) for o in result.objects]
    assert plan["estimated_bytes"] == sum(o.size_bytes for o in result.objects) > 0
    assert (plan["objects_listed"], plan["listing_calls"]) == (result.listed,
                                                               result.listing_calls)


def test_stop_ends_the_read_early_and_says_so(lake: Path) -> None:
    calls: list[int] = []
    result = read(lake, EVERYTHING, stop=lambda: len(calls) >= 2,
                  progress=lambda r: calls.append(len(r.objects)))
    assert not result.complete and len(result.objects) == 2 == len(calls)


def test_object_coordinates_parse_the_archivers_names() -> None:
    assert object_coordinates("events/a/b/audit.events.v1+4+0000000000000000123.parquet") == (
        "audit.events.v1", 4, 123)
    assert object_coordinates("events/a/b/x.parquet") is None
    assert object_coordinates("events/a/b/t+p+1.parquet") is None


def plan(*ranges: tuple[int, int, int, int]) -> Plan:
    return Plan(TOPIC, 6, 0, tuple(PartitionRange(*r) for r in ranges))


def test_auto_reads_the_lake_only_for_truncated_partitions_below_their_start() -> None:
    fresh = plan((0, 0, 50, 0), (1, 30, 80, 10))  # starts after the log start: not truncated
    assert cold_scope(fresh, "auto") is None and not cold_needed(fresh)
    truncated = plan((0, 0, 50, 0), (1, 10, 80, 10), (2, 40, 40, 40))
    scope = cold_scope(truncated, "auto")
    assert scope is not None and scope.hot
    assert scope.partitions == frozenset({1, 2}) and scope.offsets_below == {1: 10, 2: 40}


def test_lake_only_and_a_missing_topic_and_kafka_only() -> None:
    p = plan((0, 5, 50, 0), (3, 10, 80, 10))
    lake_only = cold_scope(p, "lake")
    assert lake_only is not None and not lake_only.hot
    assert lake_only.partitions == frozenset({0, 3}) and lake_only.offsets_below == {0: 50, 3: 80}
    missing = cold_scope(None, "auto")
    assert missing is not None and missing.partitions is None and missing.offsets_below is None
    assert cold_scope(plan((1, 10, 80, 10)), "kafka") is None
    with pytest.raises(ValueError, match="does not exist"):
        cold_scope(None, "kafka")
    with pytest.raises(ValueError, match="unknown source"):
        cold_scope(p, "both")  # type: ignore[arg-type]
