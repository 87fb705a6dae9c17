"""Wiring of the archiver daemon: store, ownership, notices, processor and sink on the Runner.

The Runner's commit interval is set to ``max_age_ms``: every commit cycle flushes the sink, so a
shorter interval would roll objects earlier than configured.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from consumers.archiver.notify import Notifier, SnsNotices
from consumers.archiver.sink import ArchiverProcessor, ArchiverSink, UploadHook, bucket_of
from pipeline.config import Config
from pipeline.events.errors import InvalidDatum
from pipeline.events.wire import decode
from pipeline.kafka import base_client_config, consumer_config, producer_config
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.fencing import Fencing
from pipeline.lake.store import ObjectStore, aws_client, open_lake
from pipeline.runner import Runner, RunStats


def decode_event(raw: bytes | None) -> dict[str, Any]:
    """The Runner's decoder: a single-object Avro ApiCallEvent → datum. Raises (and the
    Runner dead-letters the record) for a tombstone or anything undecodable."""
    if raw is None:
        raise InvalidDatum("record has no value (tombstone)")
    return decode(raw)


@dataclass(slots=True)
class Archiver:
    """A wired archiver; :meth:`run` polls until stopped, then closes the notice producer."""

    runner: Runner
    sink: ArchiverSink
    notifier: Notifier

    def run(self, *, idle_exit_s: float | None = None) -> RunStats:
        try:
            return self.runner.run(idle_exit_s=idle_exit_s)
        finally:
            self.notifier.close()


def _sns(archiver: ArchiverConfig) -> SnsNotices | None:
    if not archiver.sns_topic_arn:
        return None
    region = archiver.sns_topic_arn.split(":")[3] if archiver.sns_topic_arn.count(":") >= 5 \
        else None
    return SnsNotices(aws_client("sns", archiver.sns_endpoint, region), archiver.sns_topic_arn)


def build_archiver(cfg: Config, archiver: ArchiverConfig, bootstrap: str, *,
                   store: ObjectStore | None = None,
                   on_upload: UploadHook | None = None) -> Archiver:
    """The archiver for ``cfg`` (``[kafka]``, ``[topics]``, ``[runner]``, ``[storage]``) and
    ``archiver``.
    Raises ValueError for an unsupported lake URL."""
    if store is None:
        store = open_lake(cfg.storage)
    owner = archiver.owner_id or f"{socket.gethostname()}-{os.getpid()}"
    base = base_client_config(cfg.kafka, bootstrap)
    extra = dict(cfg.kafka.extra)
    notifier = Notifier(producer_config(base, {"linger.ms": "5", **extra}),
                        deliveries_topic=cfg.topics.deliveries,
                        health_topic=cfg.topics.health, lake_url=store.url,
                        bucket=bucket_of(store.url),
                        health_interval_ms=archiver.health_interval_ms, owner=owner,
                        sns=_sns(archiver))
    sink = ArchiverSink(store, Fencing(store, owner), notifier, archiver, on_upload=on_upload)
    consumer_extra = {"session.timeout.ms": str(cfg.runner.session_timeout_ms),
                      "max.poll.interval.ms": str(cfg.runner.max_poll_interval_ms), **extra}
    runner = Runner(
        consumer_conf=consumer_config(base, archiver.group, consumer_extra, read_committed=True),
        producer_conf=producer_config(base, extra),
        topics=[cfg.topics.events], processor=ArchiverProcessor(sink), sink=sink,
        config=cfg.runner.model_copy(update={"commit_interval_ms": archiver.max_age_ms}),
        dlq_topic=cfg.topics.dlq, decode=decode_event)
    return Archiver(runner, sink, notifier)
