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
from kit import read_all

from producers.generator.scenarios import SCENARIOS

pytestmark = [pytest.mark.integration, pytest.mark.fault]

EVENTS = 200_000


def openings(alerts: list[dict[str, Any]]) -> Counter[str]:
    return Counter(a["alert_id"] for a in alerts if a["update"] == 0)


def final_counts(alerts: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in alerts:
        out[a["alert_id"]] = max(out.get(a["alert_id"], 0), a["count"])
    return out


def wait_for_alerts(bootstrap: str, topic: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_all(bootstrap, topic, timeout_s=3, read_committed=True):
            return
    pytest.fail("the alerter committed no alert")


def test_three_sigkills_leave_exactly_the_alerts_of_a_clean_run(kafka, make_topic,
                                                                 unique) -> None:
    records = generated(EVENTS, list(SCENARIOS), every=5_000)
    clean, killed = alerter_topics(make_topic), alerter_topics(make_topic)
    for topics in (clean, killed):
        produce_events(kafka.bootstrap, topics["events"], records)
    settings = {"sigma_paths": [str(SIGMA_HQ)], "commit_interval_ms": 500}
    run_alerter(kafka.bootstrap, clean, f"{unique}-clean", idle_exit_s=8, **settings)
    reference = committed_alerts(kafka.bootstrap, clean["alerts"])

    wait_after_s = (4.0, 6.0, 8.0)
    for kill in range(3):
        proc = start_alerter(kafka.bootstrap, killed, unique, **settings)
        if kill == 0:
            wait_for_alerts(kafka.bootstrap, killed["alerts"])
        time.sleep(wait_after_s[kill])
        assert proc.poll() is None, proc.log_path.read_text()[-3000:]  # type: ignore[attr-defined]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    proc = start_alerter(kafka.bootstrap, killed, unique, idle_exit_s=8, **settings)
    proc.communicate(timeout=600)
    assert proc.returncode == 0, proc.log_path.read_text()[-3000:]  # type: ignore[attr-defined]
    survivor = committed_alerts(kafka.bootstrap, killed["alerts"])

    expected, got = openings(reference), openings(survivor)
    assert expected and max(expected.values()) == 1
    assert max(got.values()) == 1, [i for i, n in got.items() if n > 1]
    assert set(got) == set(expected), (set(got) ^ set(expected))
    assert final_counts(survivor) == final_counts(reference)
