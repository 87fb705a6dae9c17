"""The lake parts of the ``replay`` scenario.

* **lake_targeted**: the archiver (in this process, the real daemon) writes the bench topic
  into a file lake; then the same targeted replay (one account, region and hour) runs with
  ``--source lake``, as after the topic's retention removed the records. It must list and
  read only that account/region/date/hour's objects (counted against every object of the
  lake) and write byte-identical records to the Kafka targeted replay's.
* **lake_listing**: :func:`bench.lake_listing_bench.measure_listing` on a synthetic lake of
  100,000 objects: one account, region and day, listing pruned vs not.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from bench.archive_drain import _r
from bench.common import BenchContext, BenchError
from bench.lake_listing_bench import measure_listing
from bench.replay_setup import Target, hour_window, replay
from bench.results import ScenarioResult
from pipeline.config import load_config
from pipeline.daemon import Context, build_registered
from pipeline.lake.listing import PartitionFilter, list_events
from pipeline.lake.query import filesystem_for

LISTING_DIR = Path("var") / "bench-lake-listing"


def archive(bootstrap: str, topic: str, lake_url: str, tag: str) -> float:
    """Run the archiver over ``topic`` into ``lake_url`` until it is idle; its seconds."""
    side = {role: f"bench.replay.{role}.{tag}" for role in ("deliveries", "dlq", "health")}
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for fut in admin.create_topics([NewTopic(t, 1, -1) for t in side.values()]).values():
        fut.result(timeout=30)
    cfg = load_config(env={}, overrides={
        "kafka.bootstrap": bootstrap, "storage.lake": lake_url, "topics.events": topic,
        **{f"topics.{role}": name for role, name in side.items()},
        "archiver.group": f"bench-replay-archiver-{tag}", "log.level": "warning"})
    start = time.monotonic()
    stats = build_registered("archiver", Context(cfg, bootstrap)).run(idle_exit_s=5)
    seconds = time.monotonic() - start
    admin.delete_topics(list(side.values()))
    if stats.dead_lettered:
        raise BenchError(f"the archiver dead-lettered {stats.dead_lettered} records")
    return seconds


def lake_targeted(ctx: BenchContext, log_dir: Path, config: Path, target: Target,
                  topic: str, tag: str) -> ScenarioResult:
    """Archive the topic, then the targeted replay from the lake only (see the module)."""
    lake_dir = log_dir / "lake"
    archive_s = archive(ctx.bootstrap, topic, f"file://{lake_dir}", tag)
    fs, base = filesystem_for(f"file://{lake_dir}", None)
    total = len(list_events(fs, f"{base}/events", PartitionFilter()).files)
    run = replay(config, log_dir, "lake_targeted", hour_window(target), "--account",
                 target.account, "--region", target.region, "--source", "lake",
                 env={"TRAILPIPE_STORAGE__LAKE": f"file://{lake_dir}"})
    lake = run.summary.get("lake", {})
    same = (log_dir / "lake_targeted.jsonl").read_bytes() == (
        log_dir / "targeted.jsonl").read_bytes()
    prefix = target_prefix(target)
    manifest = json.loads((log_dir / "lake_targeted.jsonl.manifest.json").read_bytes())
    keys = [o["key"] for o in manifest["lake_objects"]]
    in_prefix = len([f for f in list_events(fs, f"{base}/events", PartitionFilter()).files
                     if f.startswith(f"{base}/{prefix}")])
    return {"lake_archive_seconds": _r(archive_s, 1), "lake_objects_total": total,
            "lake_targeted_objects_listed": lake.get("objects_listed"),
            "lake_targeted_objects_read": lake.get("objects_read"),
            "lake_targeted_rows_scanned": lake.get("rows_scanned"),
            "lake_targeted_matched": lake.get("matched"),
            "lake_targeted_seconds": _r(run.seconds, 2),
            "lake_targeted_same_bytes_as_kafka": same,
            "lake_targeted_prefix": prefix, "lake_objects_in_prefix": in_prefix,
            "met_lake_only_its_objects": bool(
                same and keys and all(k.startswith(prefix) for k in keys)
                and len(keys) == in_prefix == lake.get("objects_listed"))}


def target_prefix(target: Target) -> str:
    """``events/account=A/region=R/date=D/hour=H/`` of the target's hour."""
    t = datetime.fromtimestamp(target.hour_ms / 1000, UTC)
    return (f"events/account={target.account}/region={target.region}/date={t:%Y-%m-%d}/"
            f"hour={t:%H}/")


def lake_listing(ctx: BenchContext) -> ScenarioResult:
    """The 100k-object listing measurement, keys prefixed ``lake_listing_``."""
    measured = measure_listing(ctx.repo_root / LISTING_DIR)
    return {f"lake_listing_{key}": value for key, value in measured.items()}
