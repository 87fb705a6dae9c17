"""The aggregator against the real broker: exact windows (late and out-of-order delivery
within and beyond the grace), corrections, cross-account rollups, the lake copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aggregate_kit import (
    aggregator_topics,
    closed_windows,
    committed_aggregates,
    merged,
    recount,
    run_aggregator,
)
from alert_kit import START_MS, produce_events

from producers.generator.engine import Generator

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("TRAILPIPE_TEST_AGG_EVENTS", "60000"))
"""CI size; the closing note's run sets 1,000,000."""


def test_every_window_equals_the_recount(kafka, make_topic, unique: str, tmp_path: Path) -> None:
    topics = aggregator_topics(make_topic)
    records = list(Generator(11, 5, 3, start_ms=START_MS, events_per_second=200.0)
                   .records(EVENTS))
    produce_events(kafka.bootstrap, topics["events"], records)
    summary = run_aggregator(kafka.bootstrap, topics, unique, f"file://{tmp_path}/lake",
                             grace_ms=60_000)
    assert summary["events"] == EVENTS
    got, writes = merged(committed_aggregates(kafka.bootstrap, topics["aggregates"]))
    closed_truth = closed_windows(recount(records), records, 60_000, 3)
    assert set(got) == set(closed_truth)
    for key, tally in closed_truth.items():
        assert got[key] == tally, key
    assert max(writes.values()) == 1
