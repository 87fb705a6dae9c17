"""Exactly-once mirror: a mirror SIGKILLed three times mid-run leaves on the JSON topic and on a
view (read committed) every source record exactly once. The source is the corpus many times
over (its messy records, cheap to encode): records are told apart by their source
coordinates."""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import pytest
from kit import assert_fully_committed, committed, wait_for_work
from mirror_kit import (
    busiest_account,
    committed_json,
    coordinates_of,
    corpus,
    mirror_topics,
    produce_records,
    put_view,
    start_mirror,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault]

COPIES = 60  # x 1,073 records


def test_three_sigkills_leave_every_record_exactly_once(kafka: Any, make_topic: Any,
                                                        unique: str) -> None:
    records = corpus()
    topics = mirror_topics(make_topic)
    account = busiest_account(records)
    put_view(kafka.bootstrap, topics, f"soc-{unique}", account)
    landed = produce_records(kafka.bootstrap, topics["events"], records, copies=COPIES)
    settings = {"commit_interval_ms": 200, "alerts": False}
    for kill_after_s in (0.1, 0.3, 0.2):  # each time mid-run: after its first commit
        proc: Any = start_mirror(kafka.bootstrap, topics, unique, **settings)
        wait_for_work(proc)
        time.sleep(kill_after_s)
        assert proc.poll() is None, proc.log_path.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        done = committed(kafka.bootstrap, f"mirror-{unique}", topics["events"], 3)
        assert sum(max(o, 0) for o in done.values()) < len(landed)  # killed mid-run
    # The survivor's first assignment waits for the killed member's session (6 s) to end, and
    # then holds every partition: its idle time counts from there.
    proc = start_mirror(kafka.bootstrap, topics, unique, idle_exit_s=3, **settings)
    proc.communicate(timeout=120)
    assert proc.returncode == 0, proc.log_path.read_text()[-3000:]
    assert_fully_committed(kafka.bootstrap, f"mirror-{unique}", topics["events"], 3)

    mirrored = committed_json(kafka.bootstrap, topics["events_json"])  # until quiet: extras too
    seen = Counter(m.source for m in mirrored)
    assert [c for c, n in seen.items() if n > 1] == []
    assert set(seen) == set(landed)
    assert Counter(m.value.get("eventID") for m in mirrored) == \
        Counter(r.get("eventID") for r in records * COPIES)

    view = Counter(m.source for m in committed_json(kafka.bootstrap, topics["view"]))
    assert max(view.values()) == 1
    assert set(view) == coordinates_of(account, records, landed)
