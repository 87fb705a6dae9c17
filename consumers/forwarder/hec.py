"""Wiring of ``trailpipe consume forward-hec``: a JSON topic (``[forward_hec] topic``, default
``[topics] events_json``) in group ``[forward_hec] group``, per record, to Splunk's HTTP Event
Collector (:mod:`pipeline.forward.hec`). At least once, not transactional: offsets are
committed only after the indexer acknowledged; undecodable records are dead-lettered."""

from __future__ import annotations

from pipeline.daemon import Context, Parts
from pipeline.forward.hec import HecSink, http_client, renderer
from pipeline.forward.records import Formatter
from pipeline.logs import get_logger

log = get_logger("consumers.forwarder.hec")


def wire(ctx: Context) -> Parts:
    """The HEC forwarder's parts (hook ``hec_client``: an httpx.Client to use instead)."""
    cfg = ctx.cfg.forward_hec
    if cfg.token is None:
        log.warning("hec_without_token", hint="set [forward_hec] token; the collector will "
                    "refuse every request")
    sink = HecSink(cfg, ctx.hooks.get("hec_client") or http_client(cfg))
    return Parts(topics=[cfg.topic or ctx.cfg.topics.events_json], group=cfg.group,
                 processor=Formatter(renderer(cfg)), sink=sink, summary=sink.summary)
