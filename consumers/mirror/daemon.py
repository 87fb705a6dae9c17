"""Wiring of the mirror daemon (``trailpipe consume mirror``) for the one daemon builder.

One consumer group (``[mirror] group``) reads ``[topics] events`` (batch mode, the native Avro
decoder) and, when ``[mirror] alerts``, ``[topics] alerts`` (each alert decoded on its own: they
are few). Every cycle is one Kafka transaction (transactional.id ``[mirror] transactional_id``,
default ``trailpipe-mirror-<hostname>``: give each instance on a host its own) holding the JSON
records, the views' records, the dead letters and the consumed offsets, so read_committed
readers of ``events_json``, ``alerts_json`` and the views see every record exactly once.

Views (``[mirror] views``): a thread re-reads ``[topics] siem_subscriptions`` every
``[mirror] views_refresh_ms``; see :mod:`consumers.mirror.live_views` for when a view starts.
"""

from __future__ import annotations

import socket
from typing import Any

from consumers.mirror.alerts import decode_alerts
from consumers.mirror.live_views import LiveViews, registry_views
from consumers.mirror.processor import MirrorProcessor, MirrorTopics
from pipeline.daemon import Context, Parts, events_decoder
from pipeline.intake import BatchDecoders
from pipeline.model import BatchDecoder


def wire(ctx: Context) -> Parts:
    """The mirror's parts (hook ``views``: a :class:`LiveViews` to use instead of the
    registry's, not started by the wiring)."""
    cfg, mirror, t = ctx.cfg, ctx.cfg.mirror, ctx.cfg.topics
    decoders: dict[str, BatchDecoder] = {t.events: events_decoder(cfg)}
    outputs = [t.events_json]
    if mirror.alerts:
        decoders[t.alerts] = decode_alerts
        outputs.append(t.alerts_json)
    views: LiveViews | None = ctx.hooks.get("views")
    if views is None and mirror.views:
        views = registry_views(ctx.kafka_base, t.siem_subscriptions,
                               refresh_ms=mirror.views_refresh_ms)
        views.start()
    processor = MirrorProcessor(
        MirrorTopics(events_json=t.events_json,
                     alerts_json=t.alerts_json if mirror.alerts else None), views)

    def summary() -> dict[str, Any]:
        refreshes = {} if views is None else {"views_refreshes": views.refreshes,
                                              "views_refresh_failures": views.refresh_failures}
        return {**processor.stats(), **refreshes}

    decode: BatchDecoders = decoders
    return Parts(
        topics=list(decoders), group=mirror.group, processor=processor, sink=None,
        decode_batch=decode, commit_interval_ms=mirror.commit_interval_ms,
        transactional_id=mirror.transactional_id or f"trailpipe-mirror-{socket.gethostname()}",
        output_topics=outputs, summary=summary,
        close=views.close if views is not None else lambda: None)
