"""lake compact, the engine, on a file lake with a recording notice sink: a normal run, a crash
after every stage followed by a re-run, dry runs, and states it must refuse."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from fakes import Crash
from typer.testing import CliRunner

from pipeline.config import LogConfig
from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.compact.model import STAGES, CompactConfig
from pipeline.lake.compact.plan import INTENTS_DIR
from pipeline.lake.compact.run import Compactor
from pipeline.lake.digest.model import Compaction, parse_notice
from pipeline.lake.layout import Delivery, object_key
from pipeline.lake.store import FileStore, ObjectStore
from pipeline.logs import configure_logging

TOPIC = "audit.events.v1"
H8 = 1710057600000  # 2024-03-10T08:00Z
NOW = H8 + 24 * 3_600_000
DATE = "2024-03-10"


class Notices:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.flushed = 0

    def publish(self, key: str, value: bytes) -> None:
        self.sent.append((key, value))

    def flush(self) -> None:
        self.flushed = len(self.sent)

    def parsed(self) -> list[Delivery | Compaction]:
        return [parse_notice(v) for _, v in self.sent]


def lake_table(rows: list[tuple[int, int]], event_ms: int) -> pa.Table:
    n = len(rows)
    cols = {f.name: pa.nulls(n, f.type) for f in LAKE_SCHEMA}
    cols.update(eventid=pa.array([f"ev-{p}-{o}" for p, o in rows]),
                _partition=pa.array([p for p, _ in rows], pa.int32()),
                _offset=pa.array([o for _, o in rows], pa.int64()),
                _timestamp_ms=pa.array([event_ms] * n, pa.int64()),
                _event_time_ms=pa.array([event_ms + o for _, o in rows], pa.int64()))
    return pa.Table.from_arrays([cols[f.name] for f in LAKE_SCHEMA], schema=LAKE_SCHEMA)


def put(store: ObjectStore, account: str, event_ms: int, partition: int,
        offsets: range) -> str:
    key = object_key(account, "eu-west-1", event_ms, TOPIC, partition, offsets[0])
    out = pa.BufferOutputStream()
    pq.write_table(lake_table([(partition, o) for o in offsets], event_ms), out,
                   compression="zstd")
    store.put(key, bytes(out.getvalue().to_pybytes()))
    return key


def build(store: ObjectStore) -> None:
    """Hour 08 of account 111: partition 0 in three objects (offsets 15-19 twice, as after a
    zombie writer), partition 1 in one; account 222: a single object; hour 09: two objects."""
    put(store, "111", H8, 0, range(0, 10))
    put(store, "111", H8, 0, range(10, 20))
    put(store, "111", H8, 0, range(15, 25))
    put(store, "111", H8, 1, range(0, 5))
    put(store, "222", H8, 0, range(0, 3))
    put(store, "111", H8 + 3_600_000, 2, range(0, 4))
    put(store, "111", H8 + 3_600_000, 2, range(4, 8))


def state(store: FileStore) -> dict[str, list[tuple[int, int]]]:
    """Object key → its (partition, offset) rows, for every object under events/."""
    return {i.key: [(r["_partition"], r["_offset"]) for r in pq.read_table(
        store.root / i.key, columns=["_partition", "_offset"]).to_pylist()]
        for i in store.list("events/")}


def rows(lake: dict[str, list[tuple[int, int]]]) -> list[tuple[str, int, int]]:
    """Every row as (hour directory, partition, offset)."""
    return sorted((k.rsplit("/", 1)[0], *r) for k, v in lake.items() for r in v)


def small_target(store: FileStore) -> CompactConfig:
    """A target that splits account 111's hour 08 into three objects."""
    size = sum(i.size for i in store.list("events/account=111/") if "hour=08" in i.key)
    return CompactConfig(target_object_bytes=size // 3, small_object_bytes=size)


def run(store: ObjectStore, cfg: CompactConfig, notices: Notices, hook=None):
    return Compactor(store, notices, cfg, clock=lambda: NOW, hook=hook).run(DATE)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    s = FileStore(tmp_path / "lake")
    build(s)
    return s


def test_compacts_each_partition_once_and_announces_it(store: FileStore):
    before = state(store)
    notices = Notices()
    summary = run(store, small_target(store), notices)
    after = state(store)
    assert summary.ok and summary.totals()["partitions"] == 3
    by_part = {p.partition.split("/")[1] + p.partition[-2:]: p for p in summary.partitions}
    p8 = by_part["account=11108"]
    assert (p8.objects_before, p8.objects_after, p8.rows_in, p8.rows_out) == (4, 3, 35, 30)
    assert p8.duplicates_dropped == 5 and by_part["account=22208"].status == "unchanged"
    # Two objects that would become two again are left alone.
    assert by_part["account=11109"].status == "unchanged"
    assert len(after) == 6 and rows(after) == sorted(set(rows(before)))
    compacted = sorted(k for k in after if "+compacted+" in k)
    assert all(after[k] == sorted(after[k]) for k in compacted)
    # Each new object announced with its true hash before the compaction notice.
    parsed = notices.parsed()
    deliveries = [n for n in parsed if isinstance(n, Delivery)]
    assert sorted(d.key for d in deliveries) == compacted
    for d in deliveries:
        data = (store.root / d.key).read_bytes()
        assert (d.sha256, d.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
        assert d.delivered_at_ms == NOW and d.lake == store.url
    comps = [n for n in parsed if isinstance(n, Compaction)]
    assert len(comps) == 1 and isinstance(parsed[-1], Compaction)
    assert {k for c in comps for k in c.replaced} == set(before) - set(after)
    assert not list(store.list(f"{INTENTS_DIR}/"))
    # Nothing left to do on a second run.
    again = run(store, small_target(store), Notices())
    assert again.totals()["replaced"] == 0 and state(store) == after


@pytest.mark.parametrize("stage", STAGES)
def test_a_crash_after_any_stage_is_finished_by_a_re_run(tmp_path: Path, stage: str):
    ref_store = FileStore(tmp_path / "ref")
    build(ref_store)
    run(ref_store, small_target(ref_store), Notices())
    store = FileStore(tmp_path / "lake")
    build(store)
    cfg, before = small_target(store), state(store)

    def hook(s: str, _key: str) -> None:
        if s == stage:
            raise Crash(s)

    notices = Notices()
    with pytest.raises(Crash):
        run(store, cfg, notices, hook=hook)
    assert set(rows(state(store))) == set(rows(before))  # readable: every row still there
    if stage == "written":  # and one output lost: the re-run rebuilds it
        (store.root / sorted(k for k in state(store) if "+compacted+" in k)[1]).unlink()
    summary = run(store, cfg, notices)
    assert summary.ok, summary.errors
    assert state(store) == state(ref_store)
    assert not list(store.list(f"{INTENTS_DIR}/"))
    latest = {n.key: n for n in notices.parsed() if isinstance(n, Delivery)}
    for key in state(store):
        if "+compacted+" in key:
            data = (store.root / key).read_bytes()
            assert latest[key].sha256 == hashlib.sha256(data).hexdigest()
    assert any(isinstance(n, Compaction) for n in notices.parsed())


def test_dry_run_changes_nothing_and_predicts_the_run(store: FileStore):
    before = state(store)
    dry = Compactor(store, None, small_target(store), clock=lambda: NOW).run(DATE, dry_run=True)
    assert state(store) == before and dry.dry_run
    real = run(store, small_target(store), Notices())
    assert dry.totals() == real.totals()


def test_account_filter_and_recent_hours_are_left_alone(store: FileStore):
    before = state(store)
    summary = Compactor(store, Notices(), CompactConfig(), clock=lambda: NOW).run(
        DATE, "222")
    assert [p.partition.split("/")[1] for p in summary.partitions] == ["account=222"]
    recent = Compactor(store, Notices(), CompactConfig(), clock=lambda: H8 + 3_600_000).run(
        DATE)
    assert {p.status for p in recent.partitions} == {"too recent"}
    assert state(store) == before


def test_refuses_an_interrupted_unit_whose_inputs_and_outputs_are_gone(store: FileStore):
    with pytest.raises(Crash):
        run(store, CompactConfig(), Notices(), hook=lambda s, _k: _raise(s == "written"))
    intent_key = next(iter(store.list(f"{INTENTS_DIR}/"))).key
    intent = json.loads(store.get(intent_key))
    store.delete(intent["outputs"][0]["key"])
    store.delete(intent["replaced"][0])
    summary = run(store, CompactConfig(), Notices())
    assert not summary.ok and "left for an operator" in summary.errors[0]
    assert store.head(intent_key) is not None


def test_cli_dry_run_prints_json(store: FileStore):
    from pipeline.cli.lake_compact import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    try:  # the command configures logging onto the runner's stderr, closed afterwards
        result = CliRunner().invoke(app, ["compact", "--date", DATE, "--lake", store.url,
                                          "--dry-run", "--format", "json"])
        bad = CliRunner().invoke(app, ["compact", "--date", "10/03/2024", "--lake", store.url])
        table = CliRunner().invoke(app, ["compact", "--date", DATE, "--lake", store.url,
                                         "--dry-run"])
    finally:
        configure_logging(LogConfig(format="console"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dry_run"] and doc["totals"]["duplicates_dropped"] == 5
    assert doc["totals"]["objects_before"] == 7 and doc["totals"]["objects_after"] == 3
    assert bad.exit_code == 2
    assert table.exit_code == 0 and "7 → 3" in table.stdout, table.output


def _raise(cond: bool) -> None:
    if cond:
        raise Crash()
