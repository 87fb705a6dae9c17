"""Exactly-once alerts: an alerter SIGKILLed three times mid-run leaves on the alerts topic
(read committed) exactly the alerts of an uninterrupted run — the same ids, none twice."""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import pytest
from alert_kit import (
    SIGMA_HQ,
    alerter_topics,
    committed_alerts,
    generated,
    produce_events,
    run_alerter,
    start_alerter,
)
from kit import assert_fully_committed, wait_for_work

from producers.generator.scenarios import SCENARIOS

pytestmark = [pytest.mark.integration, pytest.mark.fault]

EVENTS = 200_000


def openings(alerts: list[dict[str, Any]]) -> Counter[str]:
    return Counter(a["alert_id"] for a in alerts if a["update"] == 0)


def final_counts(alerts: list[dict[str, Any]]) -> dict[str, int]:
    """The last count of every rule alert. (A correlation alert's count is what its window
    held when it fired, early: it depends on how partitions interleaved, run to run.)"""
    out: dict[str, int] = {}
    for a in alerts:
        if a["kind"] == "rule":
            out[a["alert_id"]] = max(out.get(a["alert_id"], 0), a["count"])
    return out


def test_three_sigkills_leave_exactly_the_alerts_of_a_clean_run(kafka, make_topic,
                                                                 unique) -> None:
    records = generated(EVENTS, list(SCENARIOS), every=5_000)
    clean, killed = alerter_topics(make_topic), alerter_topics(make_topic)
    for topics in (clean, killed):
        produce_events(kafka.bootstrap, topics["events"], records)
    settings = {"sigma_paths": [str(SIGMA_HQ)], "commit_interval_ms": 500}
    summary = run_alerter(kafka.bootstrap, clean, f"{unique}-clean", idle_exit_s=8, **settings)
    assert summary["consumed"] >= EVENTS and summary["dead_lettered"] == 0, summary
    reference = committed_alerts(kafka.bootstrap, clean["alerts"])

    for kill_after_s in (1.0, 2.0, 1.5):  # each time mid-run: after its first commit
        proc = start_alerter(kafka.bootstrap, killed, unique, **settings)
        wait_for_work(proc)
        time.sleep(kill_after_s)
        assert proc.poll() is None, proc.log_path.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    # Idle exit well past the killed members' session timeout (6 s), so the survivor is
    # given every partition before it may stop.
    proc = start_alerter(kafka.bootstrap, killed, unique, idle_exit_s=20, **settings)
    proc.communicate(timeout=600)
    assert proc.returncode == 0, proc.log_path.read_text()[-3000:]
    assert_fully_committed(kafka.bootstrap, f"alerter-{unique}", killed["events"], 3)
    survivor = committed_alerts(kafka.bootstrap, killed["alerts"])

    expected, got = openings(reference), openings(survivor)
    assert expected and max(expected.values()) == 1
    assert max(got.values()) == 1, [i for i, n in got.items() if n > 1]
    assert set(got) == set(expected), (set(got) ^ set(expected))
    assert final_counts(survivor) == final_counts(reference)
