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
