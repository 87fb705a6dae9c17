"""The replay seam on the real broker and the real S3 API: the archiver writes the lake, the
topic then loses its older records (``delete_records`` moves the log start offset, as retention
does), and hot + cold merged give every record of the window exactly once; a targeted lake-only
replay lists and reads only that account/region/date/hour's objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline.config import Config, load_config
from pipeline.daemon import Context, build_registered, events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.lake.layout import HOUR_MS
from pipeline.lake.listing import PartitionFilter, list_events
from pipeline.lake.query import filesystem_for
from pipeline.replay.canonical import canonical_records
from pipeline.replay.cold import ColdResult, cold_scope, read_cold
from pipeline.replay.config import ReplayConfig
from pipeline.replay.filters import Filters, mask
from pipeline.replay.hot import make_plan, read_plan, replay_consumer
from pipeline.replay.seam import merge
from producers.generator.engine import Generator

pytestmark = pytest.mark.integration
START_MS = 1_764_201_600_000  # 2025-11-27T00:00Z
COUNT = 3000
PARTITIONS = 3
CFG = ReplayConfig(lateness_ms=0, idle_timeout_ms=20_000)


def produce(bootstrap: str, topic: str) -> pa.Table:
    """Generator records (3 accounts x 2 regions, ~1.7 h of event time) keyed account|region,
    timestamped with their event time; returns them decoded with their coordinates."""
    records = list(Generator(5, 3, 2, start_ms=START_MS, error_rate=0.05, scenarios=(),
                             events_per_second=0.5).records(COUNT))
    values = [wire.encode(to_avro(r, ingest=IngestMeta(START_MS, "test", "seam", "gen")))
              for r in records]
    coords: dict[int, tuple[int, int]] = {}
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "partitioner": "murmur2_random", "linger.ms": 5})
    for i, (record, value) in enumerate(zip(records, values, strict=True)):
        def delivered(err: Any, msg: Any, i: int = i) -> None:
            assert err is None, err
            coords[i] = (msg.partition(), msg.offset())
        producer.produce(topic, value, key=event_key(record), on_delivery=delivered,
                         timestamp=int(datetime.fromisoformat(record["eventTime"]).timestamp()
                                       * 1000))
    assert producer.flush(30) == 0 and len(coords) == COUNT
    table = events_decoder(Config())(values).table
    table = table.append_column("_partition", pa.array([coords[i][0] for i in range(COUNT)],
                                                       pa.int32()))
    return table.append_column("_offset", pa.array([coords[i][1] for i in range(COUNT)],
                                                   pa.int64()))


@pytest.fixture
def seam(kafka: Any, make_topic: Callable[..., str], unique: str,
         s3_endpoint: str) -> dict[str, Any]:
    """The lake holds every record; the topic lost the first half of each partition."""
    topic = make_topic("seam", PARTITIONS, **{"retention.ms": "-1"})
    bucket = f"seam-{unique}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test"
                 ).create_bucket(Bucket=bucket)
    produced = produce(kafka.bootstrap, topic)
    cfg = load_config(env={}, overrides={
        "kafka.bootstrap": kafka.bootstrap, "storage.lake": f"s3://{bucket}/lake",
        "storage.s3_endpoint": s3_endpoint, "topics.events": topic,
        "topics.deliveries": make_topic("deliveries", 1), "topics.dlq": make_topic("dlq", 1),
        "archiver.group": f"arch-{unique}", "archiver.max_age_ms": 500})
    stats = build_registered("archiver", Context(cfg, kafka.bootstrap)).run(idle_exit_s=3)
    assert stats.consumed == COUNT and stats.dead_lettered == 0
    highs = Counter(produced["_partition"].to_pylist())
    cuts = {p: highs[p] // 2 for p in range(PARTITIONS)}
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    futures = admin.delete_records([TopicPartition(topic, p, o) for p, o in cuts.items()])
    for future in futures.values():
        future.result(timeout=30)
    fs, base = filesystem_for(f"s3://{bucket}/lake", s3_endpoint)
    return {"topic": topic, "bootstrap": kafka.bootstrap, "produced": produced, "cuts": cuts,
            "fs": fs, "events_root": f"{base}/events", "lake": f"s3://{bucket}/lake",
            "s3_endpoint": s3_endpoint}


def hot_and_cold(seam: dict[str, Any], filters: Filters, source: str
                 ) -> tuple[pa.Table, int, Any, ColdResult]:
    """The replay's library calls, as the CLI makes them: plan, scope, hot, cold, merge."""
    consumer = replay_consumer({"bootstrap.servers": seam["bootstrap"]}, {})
    try:
        plan = make_plan(consumer, seam["topic"], filters, CFG)
        scope = cold_scope(plan, source)  # type: ignore[arg-type]
        assert scope is not None
        hot = pa.table({})
        if scope.hot:
            hot = read_plan(consumer, plan, filters, events_decoder(Config()), CFG).table
    finally:
        consumer.close()
    cold = read_cold(seam["fs"], seam["events_root"], seam["topic"], filters,
                     partitions=scope.partitions, offsets_below=scope.offsets_below)
    merged, dropped = merge(hot, cold.table)
    return merged, dropped, plan, cold


def coordinates(table: pa.Table) -> list[tuple[int, int]]:
    return sorted(zip(table["_partition"].to_pylist(), table["_offset"].to_pylist(),
                      strict=True))


def test_hot_and_cold_merge_without_gap_or_duplicate(seam: dict[str, Any]) -> None:
    produced = seam["produced"]
    times = sorted(produced["eventTimeMs"].to_pylist())
    window = Filters(times[COUNT // 10], times[9 * COUNT // 10])  # across the cut everywhere
    want = produced.filter(mask(produced, window))
    merged, dropped, plan, cold = hot_and_cold(seam, window, "auto")
    assert [r.partition for r in plan.ranges if r.maybe_truncated] == list(range(PARTITIONS))
    assert {r.partition: r.start for r in plan.ranges} == seam["cuts"]
    assert coordinates(merged) == coordinates(want)  # each record once: no gap, no overlap
    assert canonical_records(merged) == canonical_records(want)
    assert dropped == 0  # the lake was read below each partition's log start only
    lake_part = cold.table
    assert 0 < lake_part.num_rows < merged.num_rows
    assert all(o < seam["cuts"][p] for p, o in coordinates(lake_part))
    assert all(len(o.sha256) == 64 and o.size_bytes > 0 for o in cold.objects)

    # The lake alone (capped at the plan's high watermarks) holds the same records; merged
    # with the hot rows, every record the topic still has is dropped once as a duplicate.
    lake_only, dropped_lake, _, _ = hot_and_cold(seam, window, "lake")
    assert canonical_records(lake_only) == canonical_records(want) and dropped_lake == 0
    both, dropped_both = merge(merged, lake_only)
    assert coordinates(both) == coordinates(want) and dropped_both == want.num_rows


def test_targeted_lake_only_replay_reads_only_its_hour_and_partition(
        seam: dict[str, Any]) -> None:
    produced = seam["produced"]
    first = produced.slice(COUNT // 4, 1)  # a record from the part the topic lost
    account = first["recipientAccountId"][0].as_py()
    region = first["awsRegion"][0].as_py()
    hour_ms = first["eventTimeMs"][0].as_py() // HOUR_MS * HOUR_MS
    targeted = Filters(hour_ms, hour_ms + HOUR_MS, account=account, region=region)
    merged, _, plan, cold = hot_and_cold(seam, targeted, "lake")
    want = produced.filter(mask(produced, targeted))
    assert want.num_rows > 0 and canonical_records(merged) == canonical_records(want)
    assert [r.partition for r in plan.ranges] == [first["_partition"][0].as_py()]
    t = datetime.fromtimestamp(hour_ms / 1000, UTC)
    prefix = f"events/account={account}/region={region}/date={t:%Y-%m-%d}/hour={t:%H}/"
    assert cold.objects and all(o.key.startswith(prefix) for o in cold.objects)
    everything = list_events(seam["fs"], seam["events_root"], PartitionFilter())
    assert cold.candidates == len(cold.objects) < len(everything.files) / 5
    assert cold.listed == len(cold.objects)  # one prefix probed: only its objects listed
    assert cold.rows_scanned == sum(o.rows for o in cold.objects) < produced.num_rows / 5


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli.app", *args], capture_output=True,
                          timeout=180, check=False, env={**os.environ, **env})


def test_cli_replay_across_the_seam_equals_lake_query_and_records_both_sources(
        seam: dict[str, Any], tmp_path: Path) -> None:
    """The acceptance case through the CLI: a window across retention's cut is replayed from
    the topic and the lake as one stream (every record once), equals `lake query` over the same
    window, and the manifest names both sources."""
    produced = seam["produced"]
    times = sorted(produced["eventTimeMs"].to_pylist())
    start_ms, end_ms = times[COUNT // 10] // 1000 * 1000, times[9 * COUNT // 10] // 1000 * 1000
    window = Filters(start_ms, end_ms)
    env = {"TRAILPIPE_STORAGE__LAKE": seam["lake"], "TRAILPIPE_STORAGE__S3_ENDPOINT":
           seam["s3_endpoint"], "TRAILPIPE_LOG__FORMAT": "json", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test"}
    out = tmp_path / "seam.jsonl"
    run = cli("replay", "--from", iso(start_ms), "--to", iso(end_ms), "--topic", seam["topic"],
              "--bootstrap", seam["bootstrap"], "--out", str(out), env=env)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    ids = [json.loads(line)["eventID"] for line in out.read_bytes().splitlines()]
    want = produced.filter(mask(produced, window))["eventID"].to_pylist()
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(want)  # no gap, no duplicate
    summary = json.loads(run.stderr.decode().strip().splitlines()[-1])
    assert 0 < summary["lake"]["matched"] < summary["written"] and summary["matched"] > 0
    manifest = json.loads((tmp_path / "seam.jsonl.manifest.json").read_bytes())
    assert set(manifest["counts_by_source"]) == {"kafka", "lake"} and manifest["lake_objects"]
    assert cli("replay", "verify", str(out), env=env).returncode == 0
    sql = (f"SELECT eventid FROM cloudtrail WHERE from_iso8601_timestamp(eventtime) >= "
           f"from_iso8601_timestamp('{iso(start_ms)}') AND from_iso8601_timestamp(eventtime) < "
           f"from_iso8601_timestamp('{iso(end_ms)}')")
    query = cli("lake", "query", sql, "--format", "json", env=env)
    assert query.returncode == 0, query.stderr.decode()[-2000:]
    assert sorted(json.loads(line)["eventid"] for line in query.stdout.splitlines()) == sorted(ids)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
