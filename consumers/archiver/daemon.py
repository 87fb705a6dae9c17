"""Wiring of the archiver daemon for the one daemon builder: the batch decoder, store,
ownership, notices and the sink (no processor: the Runner hands each decoded batch table
straight to the sink).

Before anything starts, a probe write under ``_probe/`` turns a lake that denies the archiver
(a bucket policy, credentials) into a one-line start-up failure instead of 403s forever.

The Runner's commit interval is set to ``max_age_ms``: every commit cycle flushes the sink, so a
shorter interval would roll objects earlier than configured.
"""

from __future__ import annotations

import os
import socket

from consumers.archiver.notify import Notifier, SnsNotices
from consumers.archiver.sink import ArchiverSink, bucket_of
from pipeline.daemon import Context, Parts, events_decoder
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.fencing import Fencing
from pipeline.lake.store import aws_client


def wire(ctx: Context) -> Parts:
    """The archiver's parts: ``[archiver]`` settings, the lake of ``[storage]`` (or the
    ``store`` hook), notices to ``topics.deliveries``/``topics.health``; hook ``on_upload``
    is called with each key after its upload (tests inject crashes there). Raises ValueError
    for an unsupported lake URL, and DestinationRefused (a ValueError) when the configured lake
    denies a probe write (checked before anything else starts; not with the ``store`` hook)."""
    cfg, arch = ctx.cfg, ctx.cfg.archiver
    store = ctx.lake("archiver")
    owner = arch.owner_id or f"{socket.gethostname()}-{os.getpid()}"
    notifier = Notifier(ctx.producer_conf(**{"linger.ms": "5"}),
                        deliveries_topic=cfg.topics.deliveries, health_topic=cfg.topics.health,
                        lake_url=store.url, bucket=bucket_of(store.url),
                        health_interval_ms=arch.health_interval_ms, owner=owner,
                        sns=_sns(arch))
    sink = ArchiverSink(store, Fencing(store, owner), notifier, arch, topic=cfg.topics.events,
                        on_upload=ctx.hooks.get("on_upload"))
    return Parts(
        topics=[cfg.topics.events], group=arch.group, processor=None, sink=sink,
        decode_batch=events_decoder(cfg), commit_interval_ms=arch.max_age_ms,
        output_topics=[cfg.topics.deliveries, cfg.topics.health],
        summary=lambda: {"lake": store.url, "rows_written": sink.rows_written,
                         "objects_written": sink.objects_written,
                         "bytes_written": sink.bytes_written})


def _sns(archiver: ArchiverConfig) -> SnsNotices | None:
    if not archiver.sns_topic_arn:
        return None
    region = archiver.sns_topic_arn.split(":")[3] if archiver.sns_topic_arn.count(":") >= 5 \
        else None
    return SnsNotices(aws_client("sns", archiver.sns_endpoint, region), archiver.sns_topic_arn)
