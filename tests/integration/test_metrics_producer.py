"""Producers' /metrics, /healthz and /readyz as real ``trailpipe produce`` processes on the real
broker: the scraped counters equal the JSON summary each prints on exit (scraped while the
producer is idle, so nothing changes between the scrape and the stop), dead letters and delivery
errors by reason, and /readyz names what is wrong when Kafka is not there."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_metrics_endpoint import free_port, get, samples, total, wait_for

from pipeline.metrics import names
from pipeline.metrics.producer import READ
from pipeline.supervisor.dashboard import parse_metrics

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TRAILPIPE = REPO / ".venv" / "bin" / "trailpipe"
IDLE_RATE = "0.0001"
"""Events per second: the generator sends one at once, the next one hours later (idle)."""
REC = {"eventVersion": "1.08", "eventName": "GetObject", "eventSource": "s3.amazonaws.com",
       "awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
       "eventTime": "2024-02-03T04:05:06Z"}


def start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    log = Path(tempfile.mkstemp(prefix="producer-metrics.", suffix=".log")[1])
    with log.open("w") as err:
        proc = subprocess.Popen([str(TRAILPIPE), "produce", *args], stdout=subprocess.PIPE,
                                stderr=err, text=True, cwd=REPO, env={**os.environ, **env})
    return proc, log


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> dict[str, Any]:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return summary


def topics_env(make_topic: Any) -> dict[str, str]:
    return {"TRAILPIPE_TOPICS__EVENTS": make_topic("produced", 3),
            "TRAILPIPE_TOPICS__DLQ": make_topic("produced-dlq", 1)}


def test_the_generators_metrics_equal_its_summary(kafka: Any, make_topic: Any) -> None:
    env = topics_env(make_topic)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start(["generator", "--bootstrap", kafka.bootstrap, "--rate", IDLE_RATE,
                       "--scenario", "none", "--metrics-port", str(port)], env)
    try:
        wait_for("ready", lambda: get(f"{base}/readyz") == (200, "ok\n"), proc, log)
        assert get(f"{base}/healthz") == (200, "ok\n")
        wait_for("the first event confirmed", lambda: total(
            samples(base), names.PRODUCED) == 1, proc, log)
        scraped = samples(base)
        text = get(f"{base}/metrics")[1]
    finally:
        summary = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, log.read_text()[-3000:]
    label = (("daemon", "producer-generator"), ("topic", env["TRAILPIPE_TOPICS__EVENTS"]))
    assert scraped[(names.PRODUCED, label)] == summary["produced"] == 1
    assert total(scraped, READ) == summary["read"] == 1
    assert total(scraped, names.DELIVERY_ERRORS) == summary["failed"] == 0
    assert total(scraped, names.DEAD_LETTERS) == summary["dead_lettered"] == 0
    assert total(scraped, "trailpipe_produced_bytes_total") == summary["bytes_out"] > 0
    # trailpipe run's dashboard reads a producer's out/s from it unchanged
    assert parse_metrics(text).outputs == summary["produced"]


def test_the_collectors_dead_letters_by_reason_equal_its_summary(kafka: Any,
                                                                   make_topic: Any) -> None:
    env = {**topics_env(make_topic), "TRAILPIPE_HTTP__TOKENS": "t0ken",
           "TRAILPIPE_METRICS__PORT": str(free_port())}  # the config's env, as trailpipe run sets
    base = f"http://127.0.0.1:{env['TRAILPIPE_METRICS__PORT']}"
    port = free_port()
    proc, log = start(["http", "--bootstrap", kafka.bootstrap, "--port", str(port)], env)
    try:
        wait_for("ready", lambda: get(f"{base}/readyz")[0] == 200, proc, log)
        body = b"\n".join([json.dumps(REC).encode(), b"[42]", json.dumps(REC).encode(),
                           b'"text"', json.dumps(REC).encode()])
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/events", content=body, timeout=30,
                            headers={"Authorization": "Bearer t0ken"})
        assert answer.status_code == 202, answer.text  # confirmed: the counters are final
        scraped = samples(base)
    finally:
        summary = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, log.read_text()[-3000:]
    reasons = Counter(e["error_type"] for e in answer.json()["errors"])
    dead = {dict(labels)["reason"]: v for (name, labels), v in scraped.items()
            if name == names.DEAD_LETTERS}
    assert dead == reasons and sum(reasons.values()) == summary["dead_lettered"] == 2
    assert total(scraped, names.PRODUCED) == summary["produced"] == 3
    assert total(scraped, READ) == summary["read"] == 5
    assert total(scraped, "trailpipe_read_bytes_total") == summary["bytes_in"]


def test_without_kafka_readyz_says_why_and_delivery_errors_are_counted() -> None:
    closed = f"127.0.0.1:{free_port()}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start(["generator", "--bootstrap", closed, "--rate", IDLE_RATE, "--scenario",
                       "none", "--metrics-port", str(port)],
                      {"TRAILPIPE_PRODUCER__DELIVERY_TIMEOUT_MS": "2000"})
    try:
        wait_for("alive", lambda: get(f"{base}/healthz") == (200, "ok\n"), proc, log)
        wait_for("the event failed", lambda: total(
            samples(base), names.DELIVERY_ERRORS) == 1, proc, log)
        wait_for("not ready without Kafka",
                 lambda: "kafka not reachable" in get(f"{base}/readyz")[1], proc, log)
        status, why = get(f"{base}/readyz")
        assert get(f"{base}/healthz") == (200, "ok\n")  # alive all the same
        scraped = samples(base)
    finally:
        summary = stop(proc, signal.SIGTERM)
    assert proc.returncode == 1, log.read_text()[-3000:]
    assert status == 503
    assert "deliveries failing: Local: Message timed out (_MSG_TIMED_OUT)" in why, why
    reason = (("daemon", "producer-generator"), ("reason", "_MSG_TIMED_OUT"))
    assert scraped[(names.DELIVERY_ERRORS, reason)] == summary["failed"] == 1
    assert total(scraped, names.PRODUCED) == summary["produced"] == 0
    assert total(scraped, names.KAFKA_ERRORS) >= 1  # the broker down, reported by librdkafka


def test_a_taken_metrics_port_stops_the_producer_with_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(TRAILPIPE), "produce", "generator", "--bootstrap", f"127.0.0.1:{free_port()}",
             "--count", "1", "--scenario", "none", "--metrics-port", str(port)],
            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""  # nothing was produced, no summary
