"""The archiver's sink without Kafka or S3: exactly-once under crashes at any upload with any
flush boundaries, zombies, held ranges, failures (pure: an in-memory store)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import Crash, MemStore

from consumers.archiver.sink import ArchiverSink
from pipeline.batches import COORDINATE_SCHEMA, with_coordinates
from pipeline.events import IngestMeta, decode, encode, to_avro
from pipeline.lake.columns import _AVRO_TYPE
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.fencing import Fenced, Fencing
from pipeline.lake.layout import Delivery
from pipeline.lake.store import FileStore, StoreUnavailable
from producers.generator.engine import Generator

TOPIC, PARTITIONS, PER_PARTITION = "audit.events.v1", 3, 200
_GEN = Generator(7, 3, 2, start_ms=1_764_201_000_000, error_rate=0.05, scenarios=(),
                 events_per_second=0.2, scenario_every=5000)  # ~5 s apart: spans hours
RAWS = [encode(to_avro(r, ingest=IngestMeta(1, "gen", "unit"))) for r in
        _GEN.records(PARTITIONS * PER_PARTITION)]
CFG = ArchiverConfig(max_records=10_000)
EVENTS = pa.Table.from_struct_array(pa.array([decode(r) for r in RAWS], type=_AVRO_TYPE))
"""Every raw message decoded, in RAWS order (message ``offset * PARTITIONS + partition``)."""


class Notices:
    """A Notifier stand-in: notices are durable once flushed; failures are recorded."""

    def __init__(self) -> None:
        self.durable: list[Delivery] = []
        self.queued: list[Delivery] = []
        self.health: list[dict[str, Any]] = []

    def delivered(self, notice: Delivery) -> None:
        self.queued.append(notice)

    def flush(self, timeout_s: float = 30.0) -> None:
        self.durable += self.queued
        self.queued = []

    def failing(self, error: BaseException, *, key: str | None, stage: str) -> None:
        self.health.append({"status": "failing", "key": key, "stage": stage,
                            "error_type": type(error).__name__})

    def recovered(self) -> None:
        if self.health and self.health[-1]["status"] == "failing":
            self.health.append({"status": "recovered"})


def batch(pairs: list[tuple[int, int]]) -> pa.Table:
    """The batch table the Runner would hand the sink for these (partition, offset) pairs."""
    index = [o * PARTITIONS + p for p, o in pairs]
    coords = pa.Table.from_arrays([
        pa.array([TOPIC] * len(pairs)), pa.array([p for p, _ in pairs], pa.int32()),
        pa.array([o for _, o in pairs], pa.int64()), pa.array([o for _, o in pairs], pa.int64()),
        pa.nulls(len(pairs), pa.binary()), pa.array([len(RAWS[i]) for i in index], pa.int32()),
    ], schema=COORDINATE_SCHEMA)
    return with_coordinates(EVENTS.take(index), coords)


def offsets(partition: int, first: int, end: int) -> pa.Table:
    return batch([(partition, o) for o in range(first, end)])


def make_sink(store: MemStore, notices: Notices, owner: str,
              crash_at_upload: int | None = None) -> ArchiverSink:
    uploads = 0

    def hook(_key: str) -> None:
        nonlocal uploads
        uploads += 1
        if crash_at_upload is not None and uploads >= crash_at_upload:
            raise Crash

    return ArchiverSink(store, Fencing(store, owner), notices, CFG, topic=TOPIC,  # type: ignore[arg-type]
                        on_upload=hook)


def run(store: MemStore, notices: Notices, committed: dict[int, int], rng: random.Random,
        owner: str, crash_at_upload: int | None = None) -> None:
    """What the Runner does: read every partition from its committed offset in batches,
    flush at random moments, commit ``min(next, held)`` after each flush (sometimes the
    commit fails); ``committed`` is the group's committed offsets. Raises Crash."""
    sink = make_sink(store, notices, owner, crash_at_upload)
    pos = dict(committed)
    while True:
        open_ = [p for p in range(PARTITIONS) if pos[p] < PER_PARTITION]
        polled = []
        for _ in range(rng.randint(1, 40) if open_ else 0):
            p = rng.choice(open_)
            if pos[p] < PER_PARTITION:
                polled.append((p, pos[p]))
                pos[p] += 1
        if polled:
            sink.add(batch(polled), None)
        if open_ and rng.random() > 0.2:
            continue
        sink.flush()
        held = sink.held()
        if rng.random() > 0.1:  # a failed commit only delays progress
            committed.update({p: min(pos[p], held.get((TOPIC, p), pos[p])) for p in pos})
        if not open_ and not held:
            committed.update(pos)
            return


def lake_rows(store: MemStore) -> Counter[tuple[int, int]]:
    rows: Counter[tuple[int, int]] = Counter()
    for key, data in store.objects.items():
        if key.startswith("events/"):
            table = pq.read_table(pa.BufferReader(data), columns=["_partition", "_offset"])
            rows.update(zip(table["_partition"].to_pylist(), table["_offset"].to_pylist(),
                            strict=True))
    return rows


def assert_exactly_once(store: MemStore, notices: Notices) -> None:
    rows = lake_rows(store)
    assert sorted(rows) == [(p, o) for p in range(PARTITIONS) for o in range(PER_PARTITION)]
    assert set(rows.values()) == {1}, "duplicated rows"
    versions: dict[str, set[bytes]] = {}
    for key, data in store.puts:
        versions.setdefault(key, set()).add(data)
    assert all(len(v) == 1 for k, v in versions.items() if k.startswith("events/")), \
        "an object key was written with different bytes"
    events = {k for k in store.objects if k.startswith("events/")}
    assert {n.key for n in notices.durable} == events
    for n in notices.durable:
        assert n.sha256 == hashlib.sha256(store.objects[n.key]).hexdigest()


@pytest.mark.parametrize("seed", range(8))
def test_crashes_at_random_uploads_with_random_boundaries_leave_each_offset_once(
        seed: int) -> None:
    rng, store, notices = random.Random(seed), MemStore(), Notices()
    committed = dict.fromkeys(range(PARTITIONS), 0)
    crashes = 0
    for attempt in range(4):
        try:
            run(store, notices, committed, rng, f"w{attempt}", rng.randint(1, 25))
        except Crash:
            crashes += 1
    run(store, notices, committed, rng, "final")
    assert crashes >= 1
    assert_exactly_once(store, notices)
    assert committed == dict.fromkeys(range(PARTITIONS), PER_PARTITION)


def test_hive_layout_keys_and_progress_records() -> None:
    store, notices = MemStore(), Notices()
    run(store, notices, dict.fromkeys(range(PARTITIONS), 0), random.Random(1), "a")
    keys = [k for k in store.objects if k.startswith("events/")]
    assert len({k.split("/hour=")[0] for k in keys}) > 1  # several accounts/regions/dates
    for n in notices.durable:
        account, region, date, hour = (part.split("=")[1] for part in n.key.split("/")[1:5])
        assert n.key.endswith(f"/{TOPIC}+{n.partition}+{n.first_offset:019d}.parquet")
        table = pq.read_table(pa.BufferReader(store.objects[n.key]))
        assert table.num_rows == n.records
        assert set(table["awsregion"].to_pylist()) == {region}
        offsets_in = table["_offset"].to_pylist()
        assert (min(offsets_in), max(offsets_in)) == (n.first_offset, n.last_offset)
        assert len(account) == 12 and len(date) == 10 and len(hour) == 2
    assert Fencing(store, "x").read(TOPIC, 0)[0]["next_offset"] == PER_PARTITION  # type: ignore[index]


def test_a_new_owner_holds_back_until_it_re_read_the_declared_range() -> None:
    store, notices = MemStore(), Notices()
    a = make_sink(store, notices, "a", crash_at_upload=1)
    a.add(offsets(0, 0, 50), None)
    with pytest.raises(Crash):
        a.flush()  # declared [0, 50), one object uploaded
    b = make_sink(store, notices, "b")
    b.add(offsets(0, 0, 30), None)
    b.flush()
    assert b.held() == {(TOPIC, 0): 0}  # held: nothing committed
    b.add(offsets(0, 30, 80), None)
    b.flush()
    assert b.held() == {}
    assert sorted(lake_rows(store)) == [(0, o) for o in range(80)]
    assert Fencing(store, "x").read(TOPIC, 0)[0]["next_offset"] == 80  # type: ignore[index]


def test_a_zombie_repeats_identical_bytes_at_most_and_is_then_fenced() -> None:
    store, notices = MemStore(), Notices()
    zombie_uploads: list[str] = []

    def newer_owner_takes_over(key: str) -> None:
        zombie_uploads.append(key)
        if len(zombie_uploads) == 1:  # the zombie stalls after its first upload
            run(store, notices, {0: 0, 1: PER_PARTITION, 2: PER_PARTITION},
                random.Random(3), "new")

    zombie = ArchiverSink(store, Fencing(store, "zombie"), notices, CFG,  # type: ignore[arg-type]
                          topic=TOPIC, on_upload=newer_owner_takes_over)
    zombie.add(offsets(0, 0, 120), None)
    with pytest.raises(Fenced):
        zombie.flush()
    assert len(zombie_uploads) > 1  # it went on uploading its declared range, then was fenced
    assert_exactly_once_partition_0(store)


def assert_exactly_once_partition_0(store: MemStore) -> None:
    rows = lake_rows(store)
    assert sorted(rows) == [(0, o) for o in range(PER_PARTITION)] and set(rows.values()) == {1}
    versions: dict[str, set[bytes]] = {}
    for key, data in store.puts:
        versions.setdefault(key, set()).add(data)
    assert all(len(v) == 1 for k, v in versions.items() if k.startswith("events/"))


def test_store_failures_raise_report_health_keep_the_buffer_and_recover() -> None:
    store, notices = MemStore(), Notices()
    sink = make_sink(store, notices, "a")
    sink.add(offsets(1, 0, 20), None)
    assert sink.should_flush(0) is False
    store.fail = StoreUnavailable("http://s3: connection refused", "EndpointConnectionError")
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            sink.flush()
    assert notices.health[0] == {"status": "failing", "key": "_owners/audit.events.v1/1.json",
                                 "stage": "ownership", "error_type": "StoreUnavailable"}
    store.fail = None
    sink.flush()
    assert notices.health[-1] == {"status": "recovered"}
    assert sorted(lake_rows(store)) == [(1, o) for o in range(20)]


def test_rolls_on_records_bytes_and_age() -> None:
    store, notices = MemStore(), Notices()
    for cfg, now in ((ArchiverConfig(max_records=5), 0),
                     (ArchiverConfig(max_bytes=1024), 0),
                     (ArchiverConfig(max_age_ms=100), 10**15)):
        sink = ArchiverSink(store, Fencing(store, "a"), notices, cfg,  # type: ignore[arg-type]
                            topic=TOPIC)
        assert not sink.should_flush(now)
        sink.add(offsets(2, 0, 5), None)
        assert sink.should_flush(now), cfg
        sink.discard()
        assert not sink.should_flush(now)


def test_startup_healthcheck_reports_an_unreachable_lake_without_raising() -> None:
    store, notices = MemStore(), Notices()
    sink = make_sink(store, notices, "a")
    assert sink.healthcheck() is True and notices.health == []
    store.fail = StoreUnavailable("http://s3: connection refused", "EndpointConnectionError")
    assert sink.healthcheck() is False
    assert notices.health == [{"status": "failing", "key": f"_owners/{TOPIC}/0.json",
                               "stage": "healthcheck", "error_type": "StoreUnavailable"}]


def test_a_file_lake_is_exactly_once_and_athena_sql_runs_on_it(tmp_path: Path) -> None:
    store, notices = FileStore(tmp_path / "lake"), Notices()
    committed = dict.fromkeys(range(PARTITIONS), 0)
    with pytest.raises(Crash):
        run(store, notices, committed, random.Random(5), "a", crash_at_upload=7)  # type: ignore[arg-type]
    run(store, notices, committed, random.Random(6), "b")  # type: ignore[arg-type]
    duckdb = pytest.importorskip("duckdb")
    files = str(tmp_path / "lake" / "events" / "**" / "*.parquet")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW cloudtrail AS SELECT * FROM read_parquet('{files}', "
                "hive_partitioning = true)")
    total, distinct = con.execute("SELECT count(*), count(DISTINCT (_partition, _offset)) "
                                  "FROM cloudtrail").fetchone()
    assert total == distinct == PARTITIONS * PER_PARTITION
    # Athena-style CloudTrail SQL: struct fields, the readonly string, Hive columns.
    by_user = con.execute(
        "SELECT useridentity.arn, count(*) FROM cloudtrail WHERE readonly = 'false' "
        "AND errorcode IS NOT NULL AND date >= '2025-01-01' GROUP BY 1").fetchall()
    assert sum(n for _, n in by_user) == sum(
        1 for raw in RAWS if not decode(raw)["readOnly"] and decode(raw)["errorCode"])
    accounts = con.execute("SELECT DISTINCT account = recipientaccountid FROM cloudtrail"
                           ).fetchall()
    assert accounts == [(True,)]
