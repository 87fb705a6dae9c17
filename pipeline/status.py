"""The live status line of ``trailpipe run``: brokers and per-topic record counts.

On a TTY it redraws one line; otherwise it logs a ``status`` event every ``log_every_s``.
Stops on Ctrl-C, SIGTERM or after ``duration_s``.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from rich.console import Console
from rich.live import Live

from pipeline.config import Config
from pipeline.kafka import base_client_config
from pipeline.logs import get_logger
from pipeline.topics import DOCUMENTED_TOPICS

log = get_logger("pipeline.status")


def topic_counts(consumer: Consumer, topics: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    """(broker count, records currently retained per topic) from the high/low watermarks."""
    meta = consumer.list_topics(timeout=10)
    counts: dict[str, int] = {}
    for name in topics:
        tmeta = meta.topics.get(name)
        if tmeta is None or tmeta.error is not None:
            continue
        total = 0
        for pid in tmeta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(name, pid), timeout=5)
            total += high - low
        counts[name] = total
    return len(meta.brokers), counts


def _line(brokers: int, counts: dict[str, int], uptime_s: float) -> str:
    parts = [f"{name.removeprefix('audit.')}={n:,}" for name, n in counts.items()]
    return f"trailpipe | brokers {brokers} | " + " ".join(parts) + f" | up {uptime_s:,.0f}s"


def run_status(cfg: Config, bootstrap: str, *, duration_s: float | None,
               interval_s: float = 1.0) -> None:
    """Show the status until Ctrl-C / SIGTERM / ``duration_s``; returns normally either way."""
    stop = {"flag": False}

    def on_term(_signum: int, _frame: Any) -> None:
        stop["flag"] = True

    previous = signal.signal(signal.SIGTERM, on_term)
    conf = {**base_client_config(cfg.kafka, bootstrap), "group.id": "trailpipe-status"}
    consumer = Consumer(conf)
    start = time.monotonic()
    live: Any = Live("", console=Console(stderr=True)) if sys.stderr.isatty() else _LogLine()
    try:
        with live:
            while not stop["flag"]:
                uptime_s = time.monotonic() - start
                if duration_s is not None and uptime_s >= duration_s:
                    break
                try:
                    live.update(_line(*topic_counts(consumer, DOCUMENTED_TOPICS), uptime_s))
                except KafkaException as exc:  # e.g. leaders still being elected after start
                    live.update(f"trailpipe | waiting for the cluster: {exc.args[0].str()}")
                time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
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
