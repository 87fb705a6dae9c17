"""Log lines always render, whatever the values logged (pure)."""

from __future__ import annotations

import io
import json
import sys

import pytest

from pipeline.config import LogConfig
from pipeline.logs import configure_logging, get_logger


def test_offsets_keyed_by_topic_and_partition_render_as_json(
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging(LogConfig(format="json"))
    get_logger("t").info("flushed", held={("audit.events.v1", 0): 7, "plain": 1}, n=2)
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["held"] == {"audit.events.v1[0]": 7, "plain": 1}
    assert (line["event"], line["n"], line["component"]) == ("flushed", 2, "t")


def test_warnings_and_worse_are_counted_librdkafkas_lines_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from pipeline.logs import kafka_logger, warnings_logged
    from pipeline.metrics import names
    from pipeline.metrics.registry import DaemonMetrics

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    configure_logging(LogConfig(format="json"))
    before = warnings_logged()
    log = get_logger("t")
    log.info("fine")
    log.warning("lag_high")
    log.error("flush_failed")
    kafka_logger().log(logging.WARNING, "Coordinator load in progress")  # as librdkafka logs
    kafka_logger().log(logging.INFO, "not counted")
    assert warnings_logged() - before == 3
    scraped = DaemonMetrics("archiver", "g").registry.get_sample_value(
        names.LOG_WARNINGS, {"daemon": "archiver"})
    assert scraped == warnings_logged()
