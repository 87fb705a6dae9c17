"""The ``replay`` scenario (issue 11's Benchmark): ``trailpipe replay`` over the 500k-event
topic the other benches use (6 partitions, keyed account|region), run as users run it, as a
subprocess, its JSON summary read from stderr.

* **full**: every record of the topic's time span into a ``.jsonl`` file; events/s is records
  written over the wall time of the command (start-up, plan, read, sort, write: what a user
  waits), target :data:`TARGET_EVENTS_PER_S`.
* **targeted**: one account, one region, one hour (picked from the full output: the busiest
  hour, which holds several accounts, and the account|region on the smallest partition that
  holds it) reads one partition; ``hour`` is the same hour without the account/region filter.
  Targets: scanned(targeted) <= scanned(hour) / 5 and seconds(hour) / seconds(targeted) >= 10.
  ``dry_run_s`` (start-up and plan only) says how much of a short run is fixed cost.
* **peer**: Kafka's ConsumerPerformance reads the same topic (no decoding, no output).
* **lake**: the same targeted replay from the lake only, and the 100k-object ``lake query``
  listing (:mod:`bench.replay_lake`).

Peak RSS and CPU come from wait4 on the child (its threads included). ``load_avg_1m`` is the
host's around each step: the box is shared, so read the numbers with it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from bench.aggregate_bench import _rate
from bench.alert_setup import EVENTS, PARTITIONS, delete_topics, fill_checked
from bench.archive_drain import _r
from bench.common import BenchContext, BenchError, Scenario
from bench.java_perf import JavaPerfResult, consumer_perf
from bench.replay_lake import lake_listing, lake_targeted
from bench.replay_setup import (
    RUN_DIR,
    Run,
    Target,
    create_topic,
    hour_window,
    pick_target,
    replay,
    write_config,
)
from bench.results import ScenarioResult

TARGET_EVENTS_PER_S = 150_000
TARGET_SCAN_SHARE = 0.2
TARGET_SPEEDUP = 10.0
TARGET_LISTING_SHARE = 0.01
ALL_TIME_MS = (0, 4_102_444_800_000)  # 1970 .. 2100: every record of the topic


def measure(ctx: BenchContext, log_dir: Path, events: int = EVENTS) -> ScenarioResult:
    """Fill a fresh topic; full replay, targeted replay, full replay of the same hour,
    ConsumerPerformance."""
    say, tag = ctx.console.print, uuid.uuid4().hex[:8]
    topic, group = f"bench.replay.events.{tag}", f"bench-replay-java-{tag}"
    config = log_dir / "replay.toml"
    write_config(config, ctx.bootstrap, topic)
    load = [os.getloadavg()[0]]
    try:
        create_topic(ctx.bootstrap, topic)
        say(f"[bold]replay[/]: generating and publishing {events:,} events")
        fill_s, ends = fill_checked(ctx.bootstrap, topic, events)
        say(f"  filled in {fill_s:.1f}s; full replay to a .jsonl file")
        full = replay(config, log_dir, "full", ALL_TIME_MS)
        if full.written != events:
            raise BenchError(f"the full replay wrote {full.written:,} of {events:,} records")
        load.append(os.getloadavg()[0])
        target = pick_target(log_dir / "full.jsonl", ends)
        (log_dir / "full.jsonl").unlink()
        say(f"  full {events / full.seconds:,.0f} events/s; targeted {target.account} "
            f"{target.region} hour {target.hour_ms}")
        window = hour_window(target)
        dry = replay(config, log_dir, "dry", window, "--account", target.account,
                     "--region", target.region, dry_run=True)
        targeted = replay(config, log_dir, "targeted", window, "--account", target.account,
                          "--region", target.region)
        load.append(os.getloadavg()[0])
        hour = replay(config, log_dir, "hour", window)
        load.append(os.getloadavg()[0])
        say("  ConsumerPerformance over the same topic")
        java = consumer_perf(ctx.repo_root, ctx.bootstrap, topic, group, events)
        load.append(os.getloadavg()[0])
        say("  archiving the topic; the targeted replay from the lake only")
        lake = lake_targeted(ctx, log_dir, config, target, topic, tag)
        say("  lake query listing on a synthetic lake of 100,000 objects")
        lake.update(lake_listing(ctx))
    finally:
        delete_topics(ctx.bootstrap, [topic], [group])
    return {"events": events, "partitions": PARTITIONS, "fill_events_per_s": _r(events / fill_s),
            **_full(full), **_targeted(target, dry, targeted, hour), **_peer(java, full),
            "load_avg_1m": " ".join(f"{value:.2f}" for value in load), **lake}


def _peer(java: JavaPerfResult, full: Run) -> ScenarioResult:
    rate = full.written / full.seconds
    return {"consumer_perf_events_per_s": _r(java.records_per_s),
            "consumer_perf_error": java.error,
            "ratio_vs_consumer_perf": _r(rate / java.records_per_s, 3)
            if java.records_per_s else None}


def _full(full: Run) -> ScenarioResult:
    rate = full.written / full.seconds
    return {"full_seconds": _r(full.seconds, 2), "full_scanned": full.scanned,
            "full_written": full.written, "events_per_s": _r(rate),
            "full_peak_rss_mb": _r(full.peak_rss_mb),
            "full_cpu_s": _r(full.cpu_s, 2),
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "met_events_per_s": rate >= TARGET_EVENTS_PER_S}


def _targeted(target: Target, dry: Run, targeted: Run, hour: Run) -> ScenarioResult:
    share = targeted.scanned / hour.scanned if hour.scanned else None
    speedup = hour.seconds / targeted.seconds
    return {"targeted_account": target.account, "targeted_region": target.region,
            "targeted_hour": target.hour_ms, "targeted_partition": target.partition,
            "hour_records": target.hour_records, "hour_accounts": target.hour_accounts,
            "targeted_key_records": target.key_records,
            "targeted_partitions_read": targeted.partitions_read,
            "targeted_scanned": targeted.scanned,
            "targeted_matched": targeted.summary.get("matched"),
            "targeted_seconds": _r(targeted.seconds, 2),
            "targeted_peak_rss_mb": _r(targeted.peak_rss_mb), "dry_run_s": _r(dry.seconds, 2),
            "hour_partitions_read": hour.partitions_read, "hour_scanned": hour.scanned,
            "hour_seconds": _r(hour.seconds, 2), "scan_share": _r(share, 4),
            "speedup_vs_hour": _r(speedup, 2),
            "met_scan_share": share is not None and share <= TARGET_SCAN_SHARE
            and targeted.partitions_read == 1,
            "met_speedup": speedup >= TARGET_SPEEDUP}


def run(ctx: BenchContext) -> ScenarioResult:
    log_dir = ctx.repo_root / RUN_DIR
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    result = measure(ctx, log_dir)
    ratio = result["lake_listing_listed_ratio"]
    result["met_listing_share"] = isinstance(ratio, float) and ratio <= TARGET_LISTING_SHARE
    result["meets_targets"] = bool(result["met_events_per_s"] and result["met_scan_share"]
                                   and result["met_speedup"]
                                   and result["met_lake_only_its_objects"]
                                   and result["met_listing_share"])
    return result


def summary(r: ScenarioResult) -> str:
    return " | ".join([
        f"replay: {r['events']:,} events",
        f"full {_rate(r['events_per_s'])} (target {TARGET_EVENTS_PER_S:,}), "
        f"{r['full_seconds']}s, {r['full_peak_rss_mb']} MiB peak",
        f"targeted: {r['targeted_partitions_read']} partition, scanned "
        f"{r['targeted_scanned']:,} of the hour's {r['hour_scanned']:,} ({r['scan_share']}), "
        f"{r['targeted_seconds']}s vs {r['hour_seconds']}s ({r['speedup_vs_hour']}x)",
        f"ConsumerPerformance {_rate(r['consumer_perf_events_per_s'])}",
        f"lake-only targeted: read {r.get('lake_targeted_objects_read')} of "
        f"{r.get('lake_objects_total')} objects, same bytes "
        f"{r.get('lake_targeted_same_bytes_as_kafka')}",
        f"listing: {r.get('lake_listing_pruned_objects_listed')} of "
        f"{r.get('lake_listing_objects_total')} objects listed",
        f"meets targets: {r['meets_targets']}",
    ])


SCENARIO = Scenario(run=run, summary=summary,
                    description="trailpipe replay (full, targeted) vs ConsumerPerformance")
