"""Exactly-once aggregates: an aggregator SIGKILLed three times mid-run leaves on the aggregates
topic (read committed) and in the lake exactly the totals of the recount, no window twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from aggregate_kit import (
    aggregator_topics,
    closed_windows,
    committed_aggregates,
    merged,
    recount,
    start_aggregator,
)
from alert_kit import START_MS, produce_events
from kit import assert_fully_committed, wait_for_work

from pipeline.aggregates.source import lake_rows
from pipeline.shapes_config import LateDeliveryConfig
from producers.generator.engine import Generator
from producers.generator.shapes import LateDelivery, shaped_records

pytestmark = [pytest.mark.integration, pytest.mark.fault]

EVENTS = 150_000
GRACE_MS = 5 * 60_000


def test_three_sigkills_leave_the_exact_totals_and_no_window_twice(
        kafka: Any, make_topic: Any, unique: str, tmp_path: Path) -> None:
    gen = Generator(23, 5, 3, start_ms=START_MS, events_per_second=EVENTS / (100 * 60))
    late = LateDelivery(LateDeliveryConfig(fraction=0.05, max_delay_ms=4 * 60_000,
                                           beyond_fraction=0.1, grace_ms=GRACE_MS), gen)
    records = list(shaped_records(gen, [late], EVENTS))
    topics = aggregator_topics(make_topic)
    produce_events(kafka.bootstrap, topics["events"], records)
    lake = f"file://{tmp_path}/lake"
    settings = {"grace_ms": GRACE_MS, "commit_interval_ms": 300}
    for kill_after_s in (0.5, 1.5, 1.0):  # each time mid-run: after its first commit
        proc = start_aggregator(kafka.bootstrap, topics, unique, lake, **settings)
        wait_for_work(proc)
        time.sleep(kill_after_s)
        assert proc.poll() is None, proc.log_path.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    # Idle exit past the killed members' session timeout (6 s).
    proc = start_aggregator(kafka.bootstrap, topics, unique, lake, idle_exit_s=12, **settings)
    proc.communicate(timeout=600)
    assert proc.returncode == 0, proc.log_path.read_text()[-3000:]
    assert_fully_committed(kafka.bootstrap, f"aggregator-{unique}", topics["events"], 3)
    log = proc.log_path.read_text()
    assert '"event": "aggregator_state_restored"' in log and '"records": 0,' not in log

    emitted = committed_aggregates(kafka.bootstrap, topics["aggregates"])
    got, writes = merged(emitted)
    truth = closed_windows(recount(records), records, GRACE_MS, 3)
    assert set(got) == set(truth)
    assert [k for k in truth if got[k] != truth[k]] == []
    assert max(writes.values()) == 1  # no window (nor correction) emitted twice
    assert any(d["correction"] for _, d in emitted)
    for size in ("1m", "1h"):  # the lake: the same records, no object left from a crash
        rows = lake_rows(lake, None, window_size=size)
        topic = sorted((d["window_start_ms"], d["count"], d["correction"]) for _, d in emitted
                       if d["window_size"] == size)
        assert sorted(zip(rows.column("window_start_ms").to_pylist(),
                          rows.column("count").to_pylist(),
                          rows.column("correction").to_pylist(), strict=True)) == topic
