"""Scenario ``alert``: the alerter against the issue's three targets.

* **throughput**: 500,000 generated events (the seeded generator, 5 accounts x 3 regions,
  every attack scenario once per 10,000 events), Avro-encoded and keyed account|region as the
  producers write them, pre-filled into a fresh 6-partition events topic. ONE
  ``trailpipe consume alerter`` process (the 57 SigmaHQ rules from
  ``../shared/corpus/sigma/aws_cloudtrail`` plus the default pack) drains it. The bench watches
  the group's committed offsets: the clock runs from the moment the group has partitions
  assigned to the moment every event offset is committed *and* the internal hits topic is
  drained too (every hits partition committed up to its last record; the last offset of a
  transactional partition is a commit marker, hence ``>= end - 1``), so ``events_per_s``
  covers both stages, alerts and window state written. ``events_per_s_stage1`` stops at the
  events alone. Peak RSS is the process's ``VmHWM``; rules and counts come from its summary.
* **latency** (:mod:`bench.alert_latency`): 5,000 events/s paced for 30 s into fresh topics
  with the alerter already running; p50/p99 of "alert seen by a read_committed reader" minus
  the triggering event's Kafka timestamp, over the alerts' openings.
* **state** (:mod:`bench.alert_state`): 1M distinct correlation group keys in one Stage.

``load_avg_1m`` is the host's load average before and after each phase: the numbers are only
as good as the machine was quiet. ``python -m bench.alert_profile`` shows where the time goes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from bench import alert_latency, alert_state
from bench.alert_setup import (
    ACCOUNTS,
    EVENTS,
    PARTITIONS,
    REGIONS,
    RUN_DIR,
    SCENARIO_EVERY,
    SIGMA_DIR,
    alert_topics,
    create_topics,
    delete_topics,
    fill_checked,
    spawn_alerter,
    stop_alerter,
    write_config,
)
from bench.alert_watch import Drain, wait_drained
from bench.archive_drain import _r, _summary
from bench.common import BenchContext, BenchError, Scenario
from bench.results import ScenarioResult

TARGET_EVENTS_PER_S = 50_000
DRAIN_TIMEOUT_S = 600.0


def throughput(ctx: BenchContext, log_dir: Path, sigma_dir: Path,
               events: int = EVENTS) -> ScenarioResult:
    """Fill fresh topics with ``events`` events, drain them with one alerter process."""
    say = ctx.console.print
    tag = uuid.uuid4().hex[:8]
    topics, group = alert_topics(f"tp-{tag}"), f"bench-alert-tp-{tag}"
    try:
        create_topics(ctx.bootstrap, topics)
        say(f"[bold]alert[/]: generating and publishing {events:,} events")
        fill_s, ends = fill_checked(ctx.bootstrap, topics["events"], events)
        say(f"  filled in {fill_s:.1f}s; draining with one alerter process")
        config = log_dir / "throughput.toml"
        write_config(config, ctx.bootstrap, topics, group, sigma_dir)
        alerter = spawn_alerter(config, log_dir, "throughput")
        try:
            drain = wait_drained(alerter, ctx.bootstrap, group, topics, ends,
                                 DRAIN_TIMEOUT_S)
        finally:
            summary = _summary(stop_alerter(alerter))
    finally:
        delete_topics(ctx.bootstrap, topics.values(), [group])
    return _throughput_result(events, fill_s, drain, summary)


def _throughput_result(events: int, fill_s: float, d: Drain,
                       summary: dict[str, Any]) -> ScenarioResult:
    if not summary:
        raise BenchError("the alerter printed no summary")
    rate = events / (d.done_s - d.startup_s)
    return {
        "events": events, "partitions": PARTITIONS, "accounts": ACCOUNTS, "regions": REGIONS,
        "scenario_every": SCENARIO_EVERY, "fill_events_per_s": _r(events / fill_s),
        "rules_loaded": summary["rules"] + summary["correlations"],
        "single_event_rules": summary["rules"], "correlation_rules": summary["correlations"],
        "events_per_s": _r(rate),
        "events_per_s_stage1": _r(events / (d.stage1_s - d.startup_s)),
        "events_per_s_incl_startup": _r(events / d.done_s),
        "drain_s": _r(d.done_s - d.startup_s, 3), "startup_s": _r(d.startup_s, 3),
        "peak_rss_mb": _r(d.peak_rss_mb), "cpu_s": _r(d.cpu_s, 2),
        "cpu_us_per_event": _r(d.cpu_s / events * 1e6 if d.cpu_s else None),
        "hits": summary.get("hits"), "alerts_opened": summary.get("alerts"),
        "alert_updates": summary.get("updates"),
        "commits": summary.get("commits"),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "met_events_per_s": rate >= TARGET_EVENTS_PER_S,
    }


def run(ctx: BenchContext) -> ScenarioResult:
    """Throughput, latency, then state memory; fresh topics and groups for each phase."""
    log_dir = ctx.repo_root / RUN_DIR
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    sigma_dir = (ctx.repo_root / SIGMA_DIR).resolve()
    if not sigma_dir.is_dir():
        raise BenchError(f"the SigmaHQ rules are not at {sigma_dir}")
    # The host's 1-minute load average around each phase: other work on the machine shows.
    load = [os.getloadavg()[0]]
    result = throughput(ctx, log_dir, sigma_dir)
    load.append(os.getloadavg()[0])
    result.update(alert_latency.measure(ctx, log_dir, sigma_dir))
    load.append(os.getloadavg()[0])
    result.update(alert_state.measure(ctx.console.print))
    result["load_avg_1m"] = " ".join(f"{value:.2f}" for value in load)
    result["meets_targets"] = all(result[k] for k in
                                  ("met_events_per_s", "met_p99_ms", "met_state_1m_keys_mib"))
    return result


def summary(r: ScenarioResult) -> str:
    return " | ".join([
        f"alert: {r['events']:,} events, {r['rules_loaded']} rules",
        f"{r['events_per_s']:,} events/s (target {TARGET_EVENTS_PER_S:,}; "
        f"stage 1 alone {r['events_per_s_stage1']:,}), {r['peak_rss_mb']} MiB peak",
        f"at {r['latency_events_per_s']:,} events/s p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms "
        f"over {r['latency_alerts']} alerts",
        f"1M keys {r['state_1m_keys_mib']} MiB ({r['state_bytes_per_key']} B/key)",
        f"meets targets: {r['meets_targets']}",
    ])


SCENARIO = Scenario(run=run, summary=summary,
                    description="the alerter: events/s, produce-to-alert latency, state memory")
