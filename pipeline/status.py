"""The live status line of ``trailpipe run``: brokers, events/s, per-partition end offsets of
the events topic, dead letters, and the other topics' record counts.

On a TTY it redraws one line; otherwise it logs a ``status`` event every ``log_every_s``.
Stops on Ctrl-C, SIGTERM or after ``duration_s``.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from rich.console import Console
from rich.live import Live

from pipeline.config import Config
from pipeline.kafka import base_client_config
from pipeline.logs import get_logger

log = get_logger("pipeline.status")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Records per topic (high minus low watermark) and the end offset of every partition."""

    brokers: int
    ends: dict[str, list[int]]
    counts: dict[str, int]
    archived: int | None = None


def committed_total(group_consumer: Consumer, topic: str, partitions: int) -> int:
    """Records of ``topic`` the consumer's group has committed (sum of committed offsets)."""
    tps = group_consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                   timeout=5)
    return sum(max(tp.offset, 0) for tp in tps)


def snapshot(consumer: Consumer, topics: tuple[str, ...]) -> Snapshot:
    meta = consumer.list_topics(timeout=10)
    ends: dict[str, list[int]] = {}
    counts: dict[str, int] = {}
    for name in topics:
        tmeta = meta.topics.get(name)
        if tmeta is None or tmeta.error is not None:
            continue
        marks = [consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                 for p in sorted(tmeta.partitions)]
        ends[name] = [high for _, high in marks]
        counts[name] = sum(high - low for low, high in marks)
    return Snapshot(len(meta.brokers), ends, counts)


def status_line(now: Snapshot, before: Snapshot | None, interval_s: float, uptime_s: float,
                events_topic: str, dlq_topic: str, extra: str = "") -> str:
    """One line: brokers | events (rate/s) [end offsets] | dlq | archived | ``extra`` (e.g.
    alerts) | other topics | uptime."""
    total = now.counts.get(events_topic, 0)
    rate = (total - before.counts.get(events_topic, 0)) / interval_s if before else 0.0
    ends = " ".join(str(e) for e in now.ends.get(events_topic, []))
    others = " ".join(f"{n.removeprefix('audit.')}={c:,}" for n, c in now.counts.items()
                      if n not in (events_topic, dlq_topic))
    archived = "" if now.archived is None else f" | archived {now.archived:,}"
    extra = f" | {extra}" if extra else ""
    return (f"trailpipe | brokers {now.brokers} | events {total:,} ({rate:,.0f}/s) "
            f"ends [{ends}] | dead letters {now.counts.get(dlq_topic, 0):,}{archived}{extra} | "
            f"{others} | up {uptime_s:,.0f}s")


def run_status(cfg: Config, bootstrap: str, *, duration_s: float | None,
               interval_s: float = 1.0, archiver_group: str | None = None,
               extra: Callable[[], str] = lambda: "") -> None:
    """Show the status until Ctrl-C / SIGTERM / ``duration_s``; returns normally either way.
    ``extra`` adds the running daemons' own figures (e.g. alerts) to the line."""
    stop = {"flag": False}

    def on_term(_signum: int, _frame: Any) -> None:
        stop["flag"] = True

    previous = signal.signal(signal.SIGTERM, on_term)
    conf = {**base_client_config(cfg.kafka, bootstrap), "group.id": "trailpipe-status"}
    consumer = Consumer(conf)
    # Only asked for committed offsets; it never subscribes, so it never joins the group.
    archiver = Consumer({**conf, "group.id": archiver_group}) if archiver_group else None
    topics = cfg.topics.names()
    start = time.monotonic()
    live: Any = Live("", console=Console(stderr=True)) if sys.stderr.isatty() else _LogLine()
    before: Snapshot | None = None
    try:
        with live:
            while not stop["flag"]:
                uptime_s = time.monotonic() - start
                if duration_s is not None and uptime_s >= duration_s:
                    break
                try:
                    now = snapshot(consumer, topics)
                    if archiver is not None:
                        parts = len(now.ends.get(cfg.topics.events, []))
                        now = replace(now, archived=committed_total(
                            archiver, cfg.topics.events, parts))
                    live.update(status_line(now, before, interval_s, uptime_s,
                                            cfg.topics.events, cfg.topics.dlq, extra()))
                    before = now
                except KafkaException as exc:  # e.g. leaders still being elected after start
                    live.update(f"trailpipe | waiting for the cluster: {exc.args[0].str()}")
                time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        if archiver is not None:
            archiver.close()
        signal.signal(signal.SIGTERM, previous)
        log.info("status_stopped", uptime_s=round(time.monotonic() - start))


class _LogLine:
    """Stands in for rich's Live when stderr is not a terminal: logs the line now and then."""

    def __init__(self, every_s: float = 10.0) -> None:
        self._every_s = every_s
        self._last_s = -every_s

    def __enter__(self) -> _LogLine:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def update(self, text: str) -> None:
        if time.monotonic() - self._last_s >= self._every_s:
            self._last_s = time.monotonic()
            log.info("status", line=text)
