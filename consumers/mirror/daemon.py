"""Wiring of the mirror daemon (``trailpipe consume mirror``) for the one daemon builder.

One consumer group (``[mirror] group``) reads ``[topics] events`` (batch mode, the native Avro
decoder) and, when ``[mirror] alerts``, ``[topics] alerts`` (each alert decoded on its own: they
are few). Every cycle is one Kafka transaction (transactional.id ``[mirror] transactional_id``,
default ``trailpipe-mirror-<hostname>``: give each instance on a host its own) holding the JSON
records, the views' records, the dead letters and the consumed offsets, so read_committed
readers of ``events_json``, ``alerts_json`` and the views see every record exactly once.

Views (``[mirror] views``): a thread re-reads ``[topics] siem_subscriptions`` every
``[mirror] views_refresh_ms``; see :mod:`consumers.mirror.live_views` for when a view starts.

The mirror makes a few small containers per record (each record's header list: the Kafka
client takes headers per message), and with CPython's default thresholds the cyclic garbage
collector then runs every 700 of them, scanning the batch's live objects: about a tenth of
the daemon's CPU. Nothing it builds is cyclic, so while it runs the first generation is
collected every :data:`GC_GEN0_ALLOCATIONS` allocations instead (restored on close).
"""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable
from typing import Any

from consumers.mirror.alerts import decode_alerts
from consumers.mirror.live_views import LiveViews, registry_views
from consumers.mirror.processor import MirrorProcessor, MirrorTopics
from pipeline.daemon import Context, Parts, events_decoder
from pipeline.intake import BatchDecoders
from pipeline.model import BatchDecoder

GC_GEN0_ALLOCATIONS = 50_000


def _collect_less_often() -> Callable[[], None]:
    """Raise the first generation's threshold (see the module docstring); returns the undo."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_GEN0_ALLOCATIONS), *old[1:])
    return lambda: gc.set_threshold(*old)


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

    restore_gc = _collect_less_often()

    def close() -> None:
        if views is not None:
            views.close()
        restore_gc()

    decode: BatchDecoders = decoders
    return Parts(
        topics=list(decoders), group=mirror.group, processor=processor, sink=None,
        decode_batch=decode, commit_interval_ms=mirror.commit_interval_ms,
        transactional_id=mirror.transactional_id or f"trailpipe-mirror-{socket.gethostname()}",
        output_topics=outputs, summary=summary, close=close)
