"""lake compact end to end: small Parquet objects (the archiver's columns) with duplicated rows,
their Delivery notices on a real deliveries topic, the digester on the real Runner (clock set
ahead so hours close), ``lake validate`` green; then compaction -- by the CLI on a file lake,
and with crashes after two different stages then a re-run on S3 -- the digester again, and
``lake validate`` green again, every row once."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import lake_kit
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from fakes import Crash
from kit import produce
from typer.testing import CliRunner

from pipeline.config import LogConfig
from pipeline.kafka import producer_config
from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.compact.model import CompactConfig
from pipeline.lake.compact.notify import KafkaNotices
from pipeline.lake.compact.plan import INTENTS_DIR
from pipeline.lake.compact.run import Compactor
from pipeline.lake.keys import generate_keypair
from pipeline.lake.layout import HOUR_MS, Delivery, hour_start, object_key
from pipeline.lake.query import run_query
from pipeline.lake.store import ObjectStore, open_store, s3_client_for
from pipeline.logs import configure_logging

pytestmark = pytest.mark.integration
TOPIC = "audit.events.v1"
DATE = "2024-03-10"
H8 = 1710057600000  # event hour 2024-03-10T08:00Z
GRACE = 60_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def lake_table(account: str, partition: int, offsets: range, event_ms: int) -> pa.Table:
    n = len(offsets)
    cols = {f.name: pa.nulls(n, f.type) for f in LAKE_SCHEMA}
    cols.update(eventid=pa.array([f"{account}-{partition}-{o}" for o in offsets]),
                eventname=pa.array(["ConsoleLogin"] * n),
                _partition=pa.array([partition] * n, pa.int32()),
                _offset=pa.array(list(offsets), pa.int64()),
                _timestamp_ms=pa.array([event_ms] * n, pa.int64()),
                _event_time_ms=pa.array([event_ms + o for o in offsets], pa.int64()))
    return pa.Table.from_arrays([cols[f.name] for f in LAKE_SCHEMA], schema=LAKE_SCHEMA)


def archive(store: ObjectStore, account: str, partition: int, offsets: range,
            delivered_ms: int) -> bytes:
    """What the archiver does for one object: write it, return its Delivery notice."""
    out = pa.BufferOutputStream()
    pq.write_table(lake_table(account, partition, offsets, H8), out, compression="zstd")
    data = bytes(out.getvalue().to_pybytes())
    key = object_key(account, "eu-west-1", H8, TOPIC, partition, offsets[0])
    store.put(key, data)
    return Delivery(store.url, key, hashlib.sha256(data).hexdigest(), len(data), len(offsets),
                    TOPIC, partition, offsets[0], offsets[-1], H8, H8 + offsets[-1],
                    delivered_ms).to_json()


def build_lake(store: ObjectStore, accounts: list[str], delivered_ms: int) -> list[bytes]:
    """Per account, hour 08: partition 0 in 6 objects of 20 rows, the last two overlapping
    by 10 offsets (a zombie writer's object), partition 1 in 2 objects."""
    notices = []
    for account in accounts:
        for start in (0, 20, 40, 60, 80, 90):
            notices.append(archive(store, account, 0, range(start, start + 20), delivered_ms))
        notices += [archive(store, account, 1, range(s, s + 20), delivered_ms) for s in (0, 20)]
    return notices


def run_digester(kafka, store: ObjectStore, setup: Setup, clock_ms: int) -> int:
    """The digester in-process on the real Runner until idle; returns digests written."""
    stats, written = lake_kit.run_digester(kafka.bootstrap, store, setup.topic, setup.group,
                                           setup.key, clock_ms, grace_ms=GRACE)
    assert stats.dead_lettered == 0
    return written


def invoke(app: typer.Typer, args: list[str]):
    try:
        return CliRunner().invoke(app, args)
    finally:
        configure_logging(LogConfig(format="console"))


def validate(store: ObjectStore, s3_endpoint: str | None, pub: Path, *,
             ok: bool = True) -> dict:
    from pipeline.cli.lake import app

    args = ["validate", "--lake", store.url, "--public-key", str(pub), "--format", "json"]
    result = invoke(app, args + (["--s3-endpoint", s3_endpoint] if s3_endpoint else []))
    report = json.loads(result.stdout)
    if ok:
        assert result.exit_code == 0 and report["ok"], report["problems"]
    return report


def recorded_compactions(store: ObjectStore) -> list[dict]:
    return [c for i in store.list("digests/") for c in json.loads(store.get(i.key))["compactions"]]


def compact_cli(args: list[str]) -> dict:
    from pipeline.cli.lake_compact import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    result = invoke(app, ["compact", "--date", DATE, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows(store: ObjectStore) -> list[tuple[str, int, int]]:
    """Every row of the lake as (account dir, partition, offset)."""
    out = []
    for info in store.list("events/"):
        t = pq.read_table(pa.BufferReader(store.get(info.key)), columns=["_partition", "_offset"])
        out += [(info.key.split("/")[1], p, o) for p, o in zip(
            t["_partition"].to_pylist(), t["_offset"].to_pylist(), strict=True)]
    return out


@dataclass(frozen=True)
class Setup:
    key: Path  # the digest signing key
    pub: Path
    topic: str  # the deliveries topic
    group: str  # the digester's group
    config: Path  # a config file naming the deliveries topic


@pytest.fixture
def setup(make_topic, unique, tmp_path) -> Setup:
    key, pub, _ = generate_keypair(tmp_path / "digest.pem")
    topic = make_topic("deliveries", 1)
    config = tmp_path / "trailpipe.toml"
    config.write_text(f'[topics]\ndeliveries = "{topic}"\n')
    return Setup(key, pub, topic, f"compact-{unique}", config)


def start_lake(kafka, store: ObjectStore, accounts: list[str], setup: Setup) -> None:
    """Objects delivered 3 hours ago, with their notices, digested."""
    delivered = hour_start(now_ms()) - 3 * HOUR_MS
    produce(kafka.bootstrap, setup.topic, build_lake(store, accounts, delivered + 1000))
    assert run_digester(kafka, store, setup, delivered + HOUR_MS + GRACE + 1) == 1


def finish_chain(kafka, store: ObjectStore, setup: Setup, ahead: int = 0) -> int:
    """Digest every hour up to the current one (where the compaction was announced), and
    ``ahead`` hours more; returns the digests written."""
    return run_digester(kafka, store, setup,
                        hour_start(now_ms()) + (1 + ahead) * HOUR_MS + GRACE + 1)


def test_cli_compacts_a_file_lake_and_validate_stays_green(kafka, tmp_path, setup):
    store = open_store(f"file://{tmp_path / 'lake'}")
    start_lake(kafka, store, ["111122223333", "444455556666"], setup)
    validate(store, None, setup.pub)
    before = rows(store)
    summary = compact_cli(["--lake", store.url, "--bootstrap", kafka.bootstrap,
                           "--config", str(setup.config)])
    totals = summary["totals"]
    assert summary["ok"] and totals["partitions_compacted"] == 2
    assert (totals["objects_before"], totals["objects_after"]) == (16, 2)
    assert (totals["rows_in"], totals["rows_out"], totals["duplicates_dropped"]) == (320, 300, 20)
    after = rows(store)
    assert len(after) == len(set(after)) == len(set(before)) == 300
    assert set(after) == set(before)
    # Until the digester closes this hour, the new objects are unlisted, the old ones missing.
    pending = validate(store, None, setup.pub, ok=False)
    assert {p["kind"] for p in pending["problems"] if p["failure"]} == {"unlisted", "missing"}
    assert finish_chain(kafka, store, setup) >= 3
    report = validate(store, None, setup.pub)
    assert report["objects_scanned"] == 2
    assert sorted(len(c["replaced"]) for c in recorded_compactions(store)) == [8, 8]
    count = run_query(store.url, "SELECT count(*) AS n, count(DISTINCT eventid) AS d "
                                 "FROM cloudtrail").to_pylist()
    assert count == [{"n": 300, "d": 300}]


def test_s3_compaction_survives_crashes_and_a_re_run_finishes_it(kafka, s3_endpoint, unique,
                                                                  setup):
    client = s3_client_for(s3_endpoint)
    client.create_bucket(Bucket=f"lake-{unique}")
    store = open_store(f"s3://lake-{unique}/prod", s3_endpoint=s3_endpoint)
    accounts = ["111111111111", "222222222222", "333333333333"]
    start_lake(kafka, store, accounts, setup)
    validate(store, s3_endpoint, setup.pub)
    before = rows(store)
    size = sum(i.size for i in store.list(f"events/account={accounts[0]}/"))
    cfg = CompactConfig(target_object_bytes=size // 3, small_object_bytes=size)
    notices = KafkaNotices(producer_config({"bootstrap.servers": kafka.bootstrap}, {}),
                           setup.topic)

    def crash_at(stage: str):
        def hook(s: str, _key: str) -> None:
            if s == stage:
                raise Crash(stage)
        return Compactor(store, notices, cfg, hook=hook)

    # Account 1: outputs written, one of them lost (as if the crash hit mid-upload).
    with pytest.raises(Crash):
        crash_at("written").run(DATE, accounts[0])
    outputs = sorted(i.key for i in store.list(f"events/account={accounts[0]}/")
                     if "+compacted+" in i.key)
    assert len(outputs) == 3
    store.delete(outputs[1])
    # Account 2: compaction announced, one replaced object deleted, then the crash.
    with pytest.raises(Crash):
        crash_at("recorded").run(DATE, accounts[1])
    store.delete(next(i.key for i in store.list(f"events/account={accounts[1]}/")
                      if "+compacted+" not in i.key))
    assert len(list(store.list(f"{INTENTS_DIR}/"))) == 2
    assert set(rows(store)) == set(before)  # readable: every row still there
    # Valid once digested, but for account 1's outputs, which were never announced.
    assert finish_chain(kafka, store, setup) >= 3
    report = validate(store, s3_endpoint, setup.pub, ok=False)
    assert {(p["kind"], p["key"]) for p in report["problems"] if p["failure"]} == {
        ("unlisted", outputs[0]), ("unlisted", outputs[2])}

    summary = compact_cli(["--lake", store.url, "--s3-endpoint", s3_endpoint,
                           "--bootstrap", kafka.bootstrap, "--config", str(setup.config)])
    assert summary["ok"] and summary["totals"]["resumed"] == 2
    assert not list(store.list(f"{INTENTS_DIR}/"))
    keys = [i.key for i in store.list("events/")]
    assert len(keys) == 3 + 3 + 1  # the resumed units keep their plan; account 3 fresh
    after = rows(store)
    assert len(after) == len(set(after)) == 450 and set(after) == set(before)
    assert all(store.head(k).sse == "AES256" for k in keys)
    # The current hour's digest is written: the re-run's notices go into the next one.
    assert finish_chain(kafka, store, setup, ahead=1) >= 1
    validate(store, s3_endpoint, setup.pub)
    assert sorted(len(c["by"]) for c in recorded_compactions(store)) == [1, 3, 3]  # once each
