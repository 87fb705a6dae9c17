"""Scenario ``aggregate``: ``trailpipe consume aggregator`` against a Quix Streams 1-minute count.

* **fill**: 500,000 generated events (the alert bench's seeded generator: 5 accounts x 3
  regions, every attack scenario once per 10,000 events, 200 events per second of event time,
  so the run spans 42 minutes: the 1-hour windows are computed and held but none closes),
  Avro-encoded and keyed account|region as the producers write them, pre-filled into a fresh
  6-partition events topic; the aggregator's other topics are created as
  ``trailpipe topics create`` makes them.
* **aggregator**: ONE ``trailpipe consume aggregator`` process with the default settings
  (1-minute and 1-hour windows, 5-minute grace, Insights and the health monitor on, the lake
  on a local directory, 2 s transactions) drains it. The clock runs from the moment its group
  has partitions assigned to the moment every events offset is committed; each commit is the
  transaction that also holds the aggregates, the state changelog and the offsets.
* **quix**: :mod:`bench.quix_aggregate_app` (Quix Streams pinned at ``QUIX_VERSION``, in the
  archive bench's virtualenv ``var/bench-venvs/quix``): the 1-minute tumbling count by the
  same key, same grace, same commit interval, with ``group_by`` through a repartition topic
  (what re-keying costs in Quix). Its clock stops when the events AND its repartition topic
  are committed (``quix_events_per_s_stage1``: the events alone).

Both sides' 1-minute counts are read back and compared on the windows both emitted
(``windows_disagreeing`` should be 0; the first ones go to ``disagreements.jsonl``). Quix
closes a window when a later message of its key arrives, so it emits fewer windows by the end
of the topic than the aggregator, which closes them on the partition's watermark. Peak RSS is
each process's ``VmHWM``; CPU is user + system from /proc. ``load_avg_1m``: the host's load
average before and after each side.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from bench.aggregate_setup import (
    COMMIT_INTERVAL_MS,
    GRACE_MS,
    RUN_DIR,
    aggregate_topics,
    aggregator_counts,
    compare,
    create_topics,
    delete_topics,
    quix_counts,
    quix_internal_topics,
    write_config,
    write_disagreements,
)
from bench.aggregate_watch import drain
from bench.alert_setup import (
    ACCOUNTS,
    EVENT_TIME_RATE,
    EVENTS,
    PARTITIONS,
    REGIONS,
    SCENARIO_EVERY,
    fill_checked,
)
from bench.archive_drain import Drain, _r, _summary
from bench.archive_setup import QUIX_VERSION, ensure_quix_venv, quix_packages
from bench.common import BenchContext, BenchError, Scenario
from bench.results import ScenarioResult
from pipeline.events.schemas import default_registry

TARGET_EVENTS_PER_S = 150_000
TARGET_RATIO_VS_QUIX = 3.0
AGGREGATOR_TIMEOUT_S = 600.0
QUIX_TIMEOUT_S = 900.0


def _aggregator(ctx: BenchContext, config: Path, log_dir: Path, topics: dict[str, str],
                group: str, ends: dict[int, int]) -> Drain:
    trailpipe = Path(sys.executable).parent / "trailpipe"
    run, _ = drain([str(trailpipe), "consume", "aggregator", "--config", str(config)],
                   log_dir, "aggregator", bootstrap=ctx.bootstrap, group=group,
                   topic=topics["events"], ends=ends, timeout_s=AGGREGATOR_TIMEOUT_S)
    if not run.complete:
        raise BenchError(f"the aggregator committed {run.committed:,}/{run.events:,} in "
                         f"{AGGREGATOR_TIMEOUT_S:.0f}s; see {log_dir / 'aggregator.log'}")
    return run


def _quix(ctx: BenchContext, python: Path, log_dir: Path, topics: dict[str, str], group: str,
          ends: dict[int, int]) -> tuple[Drain, float | None]:
    entry = default_registry().get()
    argv = [str(python), str(ctx.repo_root / "bench" / "quix_aggregate_app.py"), ctx.bootstrap,
            topics["events"], group, str(entry.path), entry.fingerprint_hex, topics["quix_out"],
            str(GRACE_MS), str(COMMIT_INTERVAL_MS / 1000), str(log_dir / "quix-state")]
    return drain(argv, log_dir, "quix", bootstrap=ctx.bootstrap, group=group,
                 topic=topics["events"], ends=ends, timeout_s=QUIX_TIMEOUT_S,
                 internal=lambda: quix_internal_topics(ctx.bootstrap, group))


def measure(ctx: BenchContext, log_dir: Path, events: int = EVENTS) -> ScenarioResult:
    """Fill fresh topics with ``events`` events; drain them with the aggregator, then Quix."""
    say, tag = ctx.console.print, uuid.uuid4().hex[:8]
    topics = aggregate_topics(tag)
    groups = {"aggregator": f"bench-aggregate-{tag}", "quix": f"bench-aggregate-quix-{tag}"}
    python = ensure_quix_venv(ctx.repo_root, say)  # before anything is timed
    load = [os.getloadavg()[0]]
    try:
        config = log_dir / "aggregator.toml"
        write_config(config, ctx.bootstrap, topics, groups["aggregator"], log_dir / "lake")
        create_topics(ctx.bootstrap, config, topics)
        say(f"[bold]aggregate[/]: generating and publishing {events:,} events")
        fill_s, ends = fill_checked(ctx.bootstrap, topics["events"], events)
        say(f"  filled in {fill_s:.1f}s; draining with one aggregator process")
        agg = _aggregator(ctx, config, log_dir, topics, groups["aggregator"], ends)
        load.append(os.getloadavg()[0])
        say(f"  aggregator {agg.events_per_s:,.0f} events/s; draining with Quix Streams")
        quix, quix_stage1_s = _quix(ctx, python, log_dir, topics, groups["quix"], ends)
        load.append(os.getloadavg()[0])
        say(f"  Quix {quix.events_per_s:,.0f} events/s; comparing the 1-minute counts")
        ours = aggregator_counts(ctx.bootstrap, topics["aggregates"])
        theirs = quix_counts(ctx.bootstrap, topics["quix_out"])
        write_disagreements(log_dir / "disagreements.jsonl", ours, theirs)
        counts = compare(ours, theirs)
    finally:
        delete_topics(ctx.bootstrap, topics.values(), groups.values())
    result = _result(events, fill_s, agg, quix, counts)
    result["quix_events_per_s_stage1"] = _r(
        None if quix_stage1_s is None else quix.committed / (quix_stage1_s - (quix.startup_s or 0)))
    result["quix_packages"] = quix_packages(python)
    result["load_avg_1m"] = " ".join(f"{value:.2f}" for value in load)
    return result


def _result(events: int, fill_s: float, agg: Drain, quix: Drain,
            counts: dict[str, int]) -> ScenarioResult:
    summary, quix_summary = _summary(agg.stdout), _summary(quix.stdout)
    ratio = agg.events_per_s / quix.events_per_s if quix.events_per_s else None
    return {
        "events": events, "partitions": PARTITIONS, "accounts": ACCOUNTS, "regions": REGIONS,
        "scenario_every": SCENARIO_EVERY, "event_time_rate_per_s": EVENT_TIME_RATE,
        "grace_ms": GRACE_MS,
        "commit_interval_ms": COMMIT_INTERVAL_MS, "fill_events_per_s": _r(events / fill_s),
        **_side("", agg, events),
        "aggregator_summary": _compact(summary),
        "quix_version": QUIX_VERSION,
        **_side("quix_", quix, events),
        "quix_complete": quix.complete,
        "quix_late_dropped": quix_summary.get("late_dropped"),
        **counts,
        "ratio_vs_quix": _r(ratio, 2),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_ratio_vs_quix": TARGET_RATIO_VS_QUIX,
        "met_events_per_s": agg.events_per_s >= TARGET_EVENTS_PER_S,
        "met_ratio_vs_quix": ratio is not None and ratio >= TARGET_RATIO_VS_QUIX,
    }


def _side(prefix: str, run: Drain, events: int) -> dict[str, Any]:
    return {
        f"{prefix}events_per_s": _r(run.events_per_s),
        f"{prefix}drain_s": _r(run.drain_s, 3), f"{prefix}startup_s": _r(run.startup_s, 3),
        f"{prefix}peak_rss_mb": _r(run.peak_rss_mb), f"{prefix}cpu_s": _r(run.cpu_s, 2),
        f"{prefix}cpu_us_per_event": _r(run.cpu_s / events * 1e6 if run.cpu_s else None),
    }


def _compact(summary: dict[str, Any]) -> str | None:
    """The daemon's summary as one JSON-ish string (results.json values are flat)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(summary.items())) if summary else None


def run(ctx: BenchContext) -> ScenarioResult:
    log_dir = ctx.repo_root / RUN_DIR
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    result = measure(ctx, log_dir)
    result["meets_targets"] = bool(result["met_events_per_s"] and result["met_ratio_vs_quix"])
    return result


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f} events/s"


def summary(r: ScenarioResult) -> str:
    return " | ".join([
        f"aggregate: {r['events']:,} events",
        f"aggregator {_rate(r['events_per_s'])} (target {TARGET_EVENTS_PER_S:,}), "
        f"{r['peak_rss_mb']} MiB peak",
        f"Quix Streams {_rate(r['quix_events_per_s'])}, {r['quix_peak_rss_mb']} MiB peak",
        f"ratio {r['ratio_vs_quix']} (target {TARGET_RATIO_VS_QUIX})",
        f"{r['windows_compared']:,} windows compared, {r['windows_disagreeing']} disagree",
        f"meets targets: {r['meets_targets']}",
    ])


SCENARIO = Scenario(run=run, summary=summary,
                    description="the aggregator's windows vs a Quix Streams 1-minute count")
