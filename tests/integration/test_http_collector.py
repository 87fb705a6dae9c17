"""The HTTP collector as a real server process, against the real broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from kit import read_all

pytestmark = pytest.mark.integration
TOKEN = "t0ken-for-tests"
REC = {"eventVersion": "1.08", "eventName": "GetObject", "eventSource": "s3.amazonaws.com",
       "awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
       "eventTime": "2024-02-03T04:05:06Z"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(kafka, events: str, dlq: str, **env: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    full_env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json", "TRAILPIPE_HTTP__TOKENS": TOKEN,
                "TRAILPIPE_TOPICS__EVENTS": events, "TRAILPIPE_TOPICS__DLQ": dlq,
                **env}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli.app", "produce", "http",
                             "--bootstrap", kafka.bootstrap, "--port", str(port)],
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503):
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("collector did not start")


@pytest.fixture
def collector(kafka, make_topic) -> Iterator[tuple[str, str, str]]:
    events, dlq = make_topic("events", 3), make_topic("dlq", 1)
    proc, url = start(kafka, events, dlq, TRAILPIPE_HTTP__MAX_BODY_BYTES="4096",
                      TRAILPIPE_HTTP__MAX_INFLIGHT_REQUESTS="1")
    yield url, events, dlq
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["balanced"] and summary["failed"] == 0


def post(url: str, body: bytes, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/v1/events", content=body, headers=headers, timeout=30)


def test_collector_contract(kafka, collector) -> None:
    url, events, dlq = collector
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    assert post(url, json.dumps([REC]).encode(), token=None).status_code == 401
    assert post(url, json.dumps([REC]).encode(), token="wrong").status_code == 401

    ok = post(url, json.dumps([REC, {**REC, "eventName": "PutObject"}]).encode())
    assert ok.status_code == 202 and ok.json()["accepted"] == 2

    ndjson = b"\n".join([json.dumps(REC).encode(), b"[42]", json.dumps(REC).encode()])
    mixed = post(url, ndjson)
    body = mixed.json()
    assert mixed.status_code == 202
    assert (body["accepted"], body["dead_lettered"]) == (2, 1)
    assert body["errors"] == [{"location": f"http:{body['request_id']}:2",
                               "error_type": "NotAnObject",
                               "error": "record is a JSON list, not an object"}]

    bad = post(url, b"{oops")
    assert bad.status_code == 400 and bad.json()["accepted"] == 0
    assert post(url, json.dumps([REC] * 40).encode()).status_code == 413

    assert len(read_all(kafka.bootstrap, events, expected=4)) == 4
    dead = read_all(kafka.bootstrap, dlq, expected=2)
    where = sorted(dict(m.headers())["x-source-location"].decode() for m in dead)
    assert where[0].startswith("http:") and f"http:{body['request_id']}:2" in where


def test_busy_collector_answers_429(collector) -> None:
    url, _, _ = collector
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b"["
        release.wait(10)
        yield json.dumps(REC).encode() + b"]"

    slow: dict[str, int] = {}
    t = threading.Thread(target=lambda: slow.update(code=httpx.post(
        f"{url}/v1/events", content=slow_body(), timeout=30,
        headers={"Authorization": f"Bearer {TOKEN}"}).status_code))
    t.start()
    time.sleep(1.0)  # the slow request holds the only in-flight slot
    busy = post(url, json.dumps([REC]).encode())
    release.set()
    t.join()
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
    assert slow["code"] == 202


def test_unconfirmed_delivery_is_503_not_202(kafka, make_topic) -> None:
    dlq = make_topic("dlq", 1)
    proc, url = start(kafka, "no.such.topic.for.this.test", dlq,
                      TRAILPIPE_PRODUCER__DELIVERY_TIMEOUT_MS="2000")
    try:
        response = post(url, json.dumps([REC]).encode())
        assert response.status_code == 503
        assert "retry" in response.json()["error"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 1  # the summary reports the failed delivery


def test_http_requires_tokens(kafka) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILPIPE_HTTP__")}
    result = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "produce", "http",
                             "--bootstrap", kafka.bootstrap], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "http.tokens" in result.stderr


def test_broker_down_is_503_and_nothing_acknowledged(make_topic) -> None:
    dead = type("Dead", (), {"bootstrap": f"127.0.0.1:{free_port()}"})()  # nothing listens
    proc, url = start(dead, "audit.events.v1", "audit.dlq.v1",
                      TRAILPIPE_PRODUCER__DELIVERY_TIMEOUT_MS="2000")
    try:
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 503
        response = post(url, json.dumps([REC, REC]).encode())
        assert response.status_code == 503 and "accepted" not in response.json()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    summary = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 1 and summary["produced"] == 0 and summary["failed"] == 2
