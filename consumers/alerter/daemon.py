"""Wiring of the alerter daemon for the one daemon builder.

One consumer group reads the events, insights and health topics and the internal hits topic;
every cycle is one Kafka transaction (transactional.id ``[alerter] transactional_id``, default
``trailpipe-alerter-<hostname>``: give each instance on a host its own). The commit interval is
``[alerter] commit_interval_ms`` (default 50 ms), which bounds the time from an event to its
committed alert: about two intervals, one per stage.
"""

from __future__ import annotations

import socket

from consumers.alerter.hits import RawDecoder
from consumers.alerter.processor import AlerterProcessor, Topics
from pipeline.changelog import read_partition
from pipeline.daemon import Context, Parts, events_decoder
from pipeline.rules.ruleset import load_ruleset


def wire(ctx: Context) -> Parts:
    """The alerter's parts. Raises ValueError listing every rule that does not load."""
    cfg, alerter = ctx.cfg, ctx.cfg.alerter
    rules = ctx.hooks.get("rules") or load_ruleset(alerter)
    if rules.problems:
        raise ValueError("rules do not load:\n  " + "\n  ".join(rules.problems))
    t = cfg.topics
    topics = Topics(events=t.events, insights=t.insights, hits=t.alerter_hits,
                    alerts=t.alerts, state=t.alerter_state, health=t.health)
    base, restore_group = ctx.kafka_base, f"{alerter.group}-restore"
    processor = AlerterProcessor(
        rules, topics, lambda p: read_partition(base, topics.state, p, group=restore_group),
        grace_ms=alerter.grace_ms, max_keys=alerter.max_state_keys,
        sample_size=alerter.sample_size)
    txn_id = alerter.transactional_id or f"trailpipe-alerter-{socket.gethostname()}"
    return Parts(
        topics=[t.events, t.insights, t.health, t.alerter_hits], group=alerter.group,
        processor=processor, sink=None,
        decode_batch={t.events: events_decoder(cfg), t.insights: events_decoder(cfg),
                      t.health: RawDecoder(), t.alerter_hits: RawDecoder()},
        commit_interval_ms=alerter.commit_interval_ms, transactional_id=txn_id,
        # A poll must not wait longer than a cycle: the latency target is two cycles.
        poll_timeout_ms=min(cfg.runner.poll_timeout_ms, alerter.commit_interval_ms // 2),
        output_topics=[t.alerts, t.alerter_state, t.health],
        summary=lambda: {"rules": len(rules.rules), "correlations": len(rules.correlations),
                         **processor.stats()})
