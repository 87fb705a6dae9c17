"""Wiring of the aggregator daemon for the one daemon builder.

One consumer group reads the events topic (batch mode, the native decoder). Every cycle is one
Kafka transaction (transactional.id ``[aggregator] transactional_id``, default
``trailpipe-aggregator-<hostname>``: give each instance on a host its own) holding the
aggregates, corrections, Insights events, health records, the state changelog and the consumed
offsets; the lake sink writes its objects before the transaction commits (see
:mod:`consumers.aggregator.sink`). The health monitor (consumer lag, dead-letter rate) runs in a
thread of this daemon and its records join the same transactions.
"""

from __future__ import annotations

import socket
from typing import Any

from consumers.aggregator.processor import AggregatorProcessor, Settings, Topics
from consumers.aggregator.sink import AggregatesSink
from pipeline.changelog import read_partition
from pipeline.daemon import Context, Parts, events_decoder
from pipeline.health.monitor import build_monitor


def wire(ctx: Context) -> Parts:
    """The aggregator's parts (hooks: ``store`` for the lake, ``monitor`` False to run without
    the health monitor thread, ``clock`` for the processor)."""
    cfg, agg = ctx.cfg, ctx.cfg.aggregator
    t = cfg.topics
    topics = Topics(events=t.events, aggregates=t.aggregates, insights=t.insights,
                    health=t.health, state=t.aggregator_state)
    base, restore_group = ctx.kafka_base, f"{agg.group}-restore"
    sink = AggregatesSink(ctx.lake("aggregator")) if agg.lake else None  # probed before anything
    monitor = None
    if ctx.hooks.get("monitor", True):
        monitor = build_monitor(cfg.kafka, ctx.bootstrap, cfg.health, health_topic=t.health,
                                dlq_topic=t.dlq)
        monitor.start()
    make_insights, stats_of = _insights(ctx)
    extra: dict[str, Any] = {"clock": ctx.hooks["clock"]} if "clock" in ctx.hooks else {}
    processor = AggregatorProcessor(
        topics, lambda p: read_partition(base, topics.state, p, group=restore_group),
        Settings(grace_ms=agg.grace_ms, max_values=agg.max_values,
                 silent_after_ms=cfg.health.silent_after_ms, lake=agg.lake),
        make_insights=make_insights, stats_of=stats_of,
        drain_health=monitor.drain if monitor is not None else list, **extra)
    txn_id = agg.transactional_id or f"trailpipe-aggregator-{socket.gethostname()}"

    def summary() -> dict[str, Any]:
        lake = {"lake_objects": sink.objects_written, "lake_rows": sink.rows_written,
                "lake_bytes": sink.bytes_written} if sink is not None else {}
        return {**processor.stats(), **lake}

    return Parts(
        topics=[t.events], group=agg.group, processor=processor, sink=sink,
        decode_batch=events_decoder(cfg), commit_interval_ms=agg.commit_interval_ms,
        transactional_id=txn_id, output_topics=[t.aggregates, t.insights, t.health,
                                                t.aggregator_state],
        summary=summary, close=monitor.close if monitor is not None else lambda: None)


def _insights(ctx: Context) -> tuple[Any, Any]:
    """The Insights engine factory and its statistics type (None, dict when disabled)."""
    cfg = ctx.cfg.aggregator.insights
    if not cfg.enabled:
        return None, dict
    from pipeline.insights import InsightEngine
    from pipeline.insights.baseline import MinuteStats

    return (lambda: InsightEngine(cfg)), (lambda stats: MinuteStats(**stats))
