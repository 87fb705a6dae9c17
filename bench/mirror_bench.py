"""Scenario ``mirror``: ``trailpipe consume mirror`` (Avro -> CloudTrail JSON, exactly once)
against Kafka's own ConsumerPerformance on the same topic, in the same run.

* **fill**: the alert bench's 500,000 generated events (:func:`bench.alert_setup.fill`: Avro,
  keyed account|region as the producers write them) in a fresh 6-partition events topic; the
  mirror's other topics as ``trailpipe topics create`` makes them (6-partition JSON topic,
  compacted subscriptions topic with no subscription: no view is served).
* **mirror**: ONE ``trailpipe consume mirror`` process with the default settings (1 s
  transactions, alerts mirrored, views on) drains it. The clock runs from the moment its group
  has partitions assigned to the moment every events offset is committed; each commit is the
  transaction that also holds the JSON records, so committed = mirrored and visible.
* **view** (``view_*``): the same again, in a new group, with one subscription whose view
  selects one account of five and removes ``requestParameters``: the cost of serving a view
  in the same pass.
* **java**: ``org.apache.kafka.tools.ConsumerPerformance`` reads the same events topic (no
  decoding, nothing produced): the ceiling of the broker and the network on this box.
  ``ratio_vs_consumer_perf`` is the mirror's rate over it.

Peak RSS is the process's ``VmHWM``; CPU is user + system from /proc (librdkafka's and
polars' threads included). ``load_avg_1m``: the host's load around each side.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

from bench.aggregate_bench import _rate, _side
from bench.aggregate_watch import drain
from bench.alert_setup import EVENTS, PARTITIONS, delete_topics, fill_checked
from bench.archive_drain import Drain, _r, _summary
from bench.common import BenchContext, BenchError, Scenario
from bench.java_perf import consumer_perf
from bench.mirror_setup import (
    RUN_DIR,
    VIEW_ACCOUNT_SHARE,
    create_topics,
    mirror_topics,
    put_view,
    write_config,
)
from bench.results import ScenarioResult

TARGET_EVENTS_PER_S = 100_000
MIRROR_TIMEOUT_S = 600.0


def _mirror(ctx: BenchContext, log_dir: Path, name: str, topics: dict[str, str], group: str,
            ends: dict[int, int]) -> Drain:
    config = log_dir / f"{name}.toml"
    write_config(config, ctx.bootstrap, topics, group)
    trailpipe = Path(sys.executable).parent / "trailpipe"
    run, _ = drain([str(trailpipe), "consume", "mirror", "--config", str(config)], log_dir,
                   name, bootstrap=ctx.bootstrap, group=group, topic=topics["events"],
                   ends=ends, timeout_s=MIRROR_TIMEOUT_S)
    if not run.complete:
        raise BenchError(f"the mirror committed {run.committed:,}/{run.events:,} in "
                         f"{MIRROR_TIMEOUT_S:.0f}s; see {log_dir / (name + '.log')}")
    return run


def measure(ctx: BenchContext, log_dir: Path, events: int = EVENTS) -> ScenarioResult:
    """Fill a fresh events topic; drain it with the mirror, with the mirror serving a view,
    and with ConsumerPerformance."""
    say, tag = ctx.console.print, uuid.uuid4().hex[:8]
    topics = mirror_topics(tag)
    groups = {side: f"bench-mirror-{side}-{tag}" for side in ("mirror", "view", "java")}
    load = [os.getloadavg()[0]]
    try:
        create_topics(ctx.bootstrap, topics)
        say(f"[bold]mirror[/]: generating and publishing {events:,} events")
        fill_s, ends = fill_checked(ctx.bootstrap, topics["events"], events)
        say(f"  filled in {fill_s:.1f}s; draining with one mirror process")
        mirror = _mirror(ctx, log_dir, "mirror", topics, groups["mirror"], ends)
        load.append(os.getloadavg()[0])
        say(f"  mirror {mirror.events_per_s:,.0f} events/s; again, serving one view")
        account = put_view(ctx.bootstrap, topics, f"bench{tag}")
        view = _mirror(ctx, log_dir, "view", topics, groups["view"], ends)
        load.append(os.getloadavg()[0])
        say(f"  with a view {view.events_per_s:,.0f} events/s; ConsumerPerformance")
        java = consumer_perf(ctx.repo_root, ctx.bootstrap, topics["events"], groups["java"],
                             events)
        load.append(os.getloadavg()[0])
    finally:
        delete_topics(ctx.bootstrap, topics.values(), groups.values())
    result = _result(events, fill_s, mirror, view)
    ratio = mirror.events_per_s / java.records_per_s if java.records_per_s else None
    result.update({
        "view_account": account, "view_account_share": VIEW_ACCOUNT_SHARE,
        "consumer_perf_events_per_s": _r(java.records_per_s),
        "consumer_perf_error": java.error, "ratio_vs_consumer_perf": _r(ratio, 3),
        "load_avg_1m": " ".join(f"{value:.2f}" for value in load),
    })
    return result


def _result(events: int, fill_s: float, mirror: Drain, view: Drain) -> ScenarioResult:
    summary, view_summary = _summary(mirror.stdout), _summary(view.stdout)
    return {
        "events": events, "partitions": PARTITIONS, "fill_events_per_s": _r(events / fill_s),
        **_side("", mirror, events), "mirrored": summary.get("mirrored"),
        "dead_lettered": summary.get("dead_lettered"), "commits": summary.get("commits"),
        **_side("view_", view, events),
        "view_records": sum((view_summary.get("views") or {}).values()) or None,
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "met_events_per_s": mirror.events_per_s >= TARGET_EVENTS_PER_S,
    }


def run(ctx: BenchContext) -> ScenarioResult:
    log_dir = ctx.repo_root / RUN_DIR
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    result = measure(ctx, log_dir)
    result["meets_targets"] = bool(result["met_events_per_s"])
    return result


def summary(r: ScenarioResult) -> str:
    return " | ".join([
        f"mirror: {r['events']:,} events",
        f"mirror {_rate(r['events_per_s'])} (target {TARGET_EVENTS_PER_S:,}), "
        f"{r['cpu_us_per_event']} us CPU/event, {r['peak_rss_mb']} MiB peak",
        f"with one view {_rate(r['view_events_per_s'])}",
        f"ConsumerPerformance {_rate(r['consumer_perf_events_per_s'])}, "
        f"ratio {r['ratio_vs_consumer_perf']}",
        f"meets targets: {r['meets_targets']}",
    ])


SCENARIO = Scenario(run=run, summary=summary,
                    description="the JSON mirror vs Kafka's ConsumerPerformance")
