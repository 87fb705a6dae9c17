"""The archiver under faults, against the real broker and S3 over HTTP: a member joins and one
leaves mid-run; a member stalls past its session and wakes as a zombie; the S3 endpoint goes
away for 30 s mid-run (a moto server of our own, killed and restarted on the same port)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kit import committed, read_all
from test_archiver import (
    assert_exactly_once,
    generate,
    lake_objects,
    lake_rows,
    latest_notices,
    log_of,
    make_lake,
    s3_client,
    start_archiver,
    wait_committed,
    wait_for_log,
)

from pipeline.dev import procs
from pipeline.dev.s3 import answers
from pipeline.health.record import decode_health

pytestmark = [pytest.mark.integration, pytest.mark.fault]
EVENTS = 40_000
OUTAGE_S = 30.0


def test_rebalance_a_member_joins_and_one_leaves(kafka, s3_endpoint, make_topic, unique):
    lake = make_lake(kafka, make_topic, unique, s3_endpoint, max_records=4_000)
    a = start_archiver(lake)
    wait_for_log(a, "partitions_assigned")
    producer = generate(kafka, lake["topics"]["events"], EVENTS, 5_000, background=True)
    time.sleep(2)
    b = start_archiver(lake)
    wait_for_log(b, "partitions_assigned")
    time.sleep(2)
    a.send_signal(signal.SIGTERM)  # a leaves: b takes every partition over
    assert a.wait(60) == 0, log_of(a)[-3000:]
    assert producer.wait(120) == 0  # type: ignore[union-attr]
    ends = wait_committed(lake)
    b.send_signal(signal.SIGTERM)
    assert b.wait(60) == 0, log_of(b)[-3000:]
    assert sum(ends.values()) == EVENTS
    rows = lake_rows(lake_objects(s3_endpoint, lake["bucket"]))
    assert_exactly_once(rows, {p: range(e) for p, e in ends.items()})
    for member in (a, b):  # both wrote part of the lake
        summary = json.loads(member.stdout.read().strip().splitlines()[-1])  # type: ignore[union-attr]
        assert summary["rows"] > 0, summary


def test_a_stalled_member_wakes_as_a_zombie_and_is_fenced(kafka, s3_endpoint, make_topic,
                                                           unique):
    lake = make_lake(kafka, make_topic, unique, s3_endpoint, max_records=100_000,
                     max_age_ms=4_000)
    fast = {"TRAILPIPE_RUNNER__FLUSH_RETRY_BUDGET_MS": "1000",
            "TRAILPIPE_RUNNER__BACKPRESSURE_PAUSE_MS": "1000"}
    zombie = start_archiver(lake, env=fast)
    wait_for_log(zombie, "partitions_assigned")
    producer = generate(kafka, lake["topics"]["events"], EVENTS, 5_000, background=True)
    time.sleep(2.5)
    zombie.send_signal(signal.SIGSTOP)  # stalls with a buffer, past its 6 s session
    b = start_archiver(lake, env=fast)
    wait_for_log(b, "partition_acquired", timeout_s=60)  # b took over and bumped the tokens
    time.sleep(2)
    zombie.send_signal(signal.SIGCONT)  # wakes up believing it still owns its partitions
    time.sleep(6)
    zombie.send_signal(signal.SIGTERM)
    assert zombie.wait(60) in (0, 1), log_of(zombie)[-3000:]
    assert producer.wait(120) == 0  # type: ignore[union-attr]
    ends = wait_committed(lake)
    b.send_signal(signal.SIGTERM)
    assert b.wait(60) == 0, log_of(b)[-3000:]
    rows = lake_rows(lake_objects(s3_endpoint, lake["bucket"]))
    assert_exactly_once(rows, {p: range(e) for p, e in ends.items()})
    woke = log_of(zombie)
    print("\nzombie after SIGCONT:", "fenced" if '"error_type": "Fenced"' in woke else
          "lost its partitions before flushing" if "partitions_lost" in woke or
          "partitions_revoked" in woke else "no flush")


@pytest.fixture
def own_s3() -> Iterator[dict[str, Any]]:
    """A moto S3 server of this test's own, which the test may kill and restart."""
    port = procs.free_port()
    state: dict[str, Any] = {"port": port, "endpoint": f"http://127.0.0.1:{port}"}

    def start() -> None:
        state["proc"] = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not answers(port):
            assert time.monotonic() < deadline, "moto did not start"
            time.sleep(0.2)

    def stop() -> None:
        state["proc"].kill()
        state["proc"].wait(10)

    state["start"], state["stop"] = start, stop
    start()
    yield state
    stop()


def test_s3_outage_backpressures_reports_health_and_loses_nothing(kafka, make_topic, unique,
                                                                  own_s3):
    lake = make_lake(kafka, make_topic, unique, own_s3["endpoint"], partitions=6,
                     max_records=3_000, max_age_ms=1_000, health_interval_ms=1_000)
    fast = {"TRAILPIPE_RUNNER__FLUSH_RETRY_BUDGET_MS": "1500",
            "TRAILPIPE_RUNNER__FLUSH_RETRY_BACKOFF_MS": "100",
            "TRAILPIPE_RUNNER__BACKPRESSURE_PAUSE_MS": "1500"}
    topic, group, parts = lake["topics"]["events"], lake["archiver"]["group"], 6
    archiver = start_archiver(lake, env=fast)
    wait_for_log(archiver, "partitions_assigned")
    # 40 s of traffic: it goes on through the outage and after S3 is back.
    producer = generate(kafka, topic, EVENTS, 1_000, background=True)
    deadline = time.monotonic() + 60
    while not any("/events/" in k for k in lake_objects(own_s3["endpoint"], lake["bucket"])):
        assert time.monotonic() < deadline, "nothing archived before the outage"
        time.sleep(0.5)
    own_s3["stop"]()  # S3 goes away; moto's state (objects, owner records) goes with it
    down = time.monotonic()
    time.sleep(2)  # a commit cycle already past its flush may still land
    before = committed(kafka.bootstrap, group, topic, parts)
    samples = []
    while time.monotonic() - down < OUTAGE_S:
        time.sleep(1)
        samples.append(committed(kafka.bootstrap, group, topic, parts))
    assert producer.poll() is None, "traffic ended before S3 came back"  # type: ignore[union-attr]
    own_s3["start"]()
    outage_s = time.monotonic() - down
    s3_client(own_s3["endpoint"]).create_bucket(Bucket=lake["bucket"])
    assert producer.wait(120) == 0  # type: ignore[union-attr]
    ends = wait_committed(lake)
    archiver.send_signal(signal.SIGTERM)
    assert archiver.wait(60) == 0, log_of(archiver)[-3000:]

    assert outage_s >= OUTAGE_S and len(samples) >= 10, (outage_s, len(samples))
    assert all(s == before for s in samples), "committed during the outage"
    assert_health_reported(kafka, lake)
    assert_nothing_lost(kafka, lake, own_s3["endpoint"], before, ends)


def assert_health_reported(kafka: Any, lake: dict[str, Any]) -> None:
    messages = read_all(kafka.bootstrap, lake["topics"]["health"])
    assert {m.key() for m in messages} == {f"archiver|{lake['bucket']}".encode()}
    health = [decode_health(m.value()) for m in messages]
    failing = [h for h in health if h["status"] == "failing"]
    assert failing and health[-1]["status"] == "recovered"
    assert all(h["subject"] == lake["bucket"] and h["details"]["error"] for h in failing)
    assert any(h["details"]["key"] and h["details"]["error_type"] == "StoreUnavailable"
               for h in failing)


def assert_nothing_lost(kafka: Any, lake: dict[str, Any], endpoint: str,
                        before: dict[int, int], ends: dict[int, int]) -> None:
    """The lake written after the restart holds exactly what was not committed before the
    outage; what was committed before it (lost with moto's memory) was written: the delivery
    notices of those objects account for every offset below the commit."""
    parts = lake["partitions"]
    start = {p: max(before[p], 0) for p in range(parts)}
    rows = lake_rows(lake_objects(endpoint, lake["bucket"]))
    assert_exactly_once(rows, {p: range(start[p], ends[p]) for p in range(parts)})
    notices = latest_notices(kafka, lake["topics"]["deliveries"]).values()
    for p in range(parts):
        below = [n for n in notices if n.partition == p and n.first_offset < start[p]]
        assert sum(n.records for n in below) == start[p], p
        assert all(n.last_offset < start[p] for n in below)
