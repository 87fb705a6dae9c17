"""``trailpipe consume archiver --metrics-port`` as a real process on the real broker, with a
moto S3 server this test starts (and stops) itself: /readyz turns ready, names the lake when
its endpoint goes away and turns ready again when it is back; /metrics parses with
prometheus_client's text parser and its counters equal the summary the daemon prints on exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_archiver import generate, make_lake

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    """moto's S3 server on a fixed loopback port, in this process: its buckets outlive a
    stop/start (moto's backends are per process), so "back" means the same lake."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._make = ThreadedMotoServer
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        self._server = self._make(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture
def own_s3() -> Iterator[Moto]:
    moto = Moto()
    moto.start()
    yield moto
    moto.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:  # not listening yet
        return 0, str(exc)


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[str],
             log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, f"the archiver exited:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)
    pytest.fail(f"never {what}:\n{log.read_text()[-3000:]}")


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = get(f"{base}/metrics")
    assert status == 200, text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in scraped.items() if n == name)


def lag_of(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float | None:
    """The summed lag gauge; None before librdkafka reported any partition's lag."""
    lags = [v for (n, _), v in scraped.items() if n == "trailpipe_consumer_lag_records"]
    return sum(lags) if lags else None


def start_archiver(lake: dict[str, Any], port: int) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TRAILPIPE_RUNNER__SESSION_TIMEOUT_MS": "6000",
           "TRAILPIPE_ARCHIVER__MAX_AGE_MS": "1500",
           **{f"TRAILPIPE_TOPICS__{role.upper()}": name
              for role, name in lake["topics"].items()}}
    log = Path(tempfile.mkstemp(prefix="archiver-metrics.", suffix=".log")[1])
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "trailpipe"), "consume", "archiver",
             "--bootstrap", lake["kafka"], "--lake", f"s3://{lake['bucket']}/lake",
             "--s3-endpoint", lake["s3"], "--group", lake["archiver"]["group"],
             "--metrics-port", str(port)],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO, env=env)
    return proc, log


def test_readyz_follows_the_lake_and_metrics_match_the_summary(
        kafka: Any, make_topic: Any, unique: str, own_s3: Moto) -> None:
    lake = make_lake(kafka, make_topic, unique, own_s3.endpoint, partitions=3)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start_archiver(lake, port)
    try:
        wait_for("ready", lambda: get(f"{base}/readyz")[0] == 200, proc, log)
        assert get(f"{base}/healthz") == (200, "ok\n")

        own_s3.stop()
        wait_for("not ready without the lake",
                 lambda: "lake not reachable" in get(f"{base}/readyz")[1], proc, log)
        status, body = get(f"{base}/readyz")
        assert status == 503 and body.startswith("lake not reachable: "), body
        assert get(f"{base}/healthz")[0] == 200  # alive all the same
        own_s3.start()
        wait_for("ready again", lambda: get(f"{base}/readyz")[0] == 200, proc, log)

        count = 500
        generate(kafka, lake["topics"]["events"], count, rate=5000)
        wait_for("all consumed and archived", lambda: (
            total(s := samples(base), "trailpipe_records_consumed_total") == count
            and total(s, "trailpipe_lake_rows_total") == count), proc, log)
        # librdkafka reports the lag every [metrics] lag_interval_ms: 0 once all is committed
        wait_for("the lag reported as 0", lambda: lag_of(samples(base)) == 0, proc, log)
        scraped = samples(base)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert total(scraped, "trailpipe_records_consumed_total") == summary["consumed"] == count
    assert total(scraped, "trailpipe_records_processed_total") == summary["processed"]
    assert total(scraped, "trailpipe_dead_letters_total") == summary["dead_lettered"] == 0
    assert total(scraped, "trailpipe_lake_rows_total") == summary["rows_written"]
    assert total(scraped, "trailpipe_lake_objects_total") == summary["objects_written"] > 0
    partitions = {dict(labels)["partition"] for (name, labels) in scraped
                  if name == "trailpipe_records_consumed_total"}
    assert partitions <= {"0", "1", "2"} and partitions
    assert total(scraped, "trailpipe_flush_seconds_count") >= 1


def test_the_probes_tell_reachable_from_unreachable(kafka: Any, make_topic: Any,
                                                    s3_endpoint: str, unique: str) -> None:
    from pipeline.lake.store import open_store
    from pipeline.metrics.readiness import kafka_probe, lake_probe

    topic = make_topic("probed", 1)
    kafka_probe({"bootstrap.servers": kafka.bootstrap}, topic, 10)()
    with pytest.raises(LookupError, match="no metadata for topic"):
        kafka_probe({"bootstrap.servers": kafka.bootstrap}, f"missing-{unique}", 10)()
    from confluent_kafka.admin import AdminClient  # the probe created nothing (auto-create on)

    listed = AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10).topics
    assert topic in listed and f"missing-{unique}" not in listed
    closed = f"127.0.0.1:{free_port()}"
    with pytest.raises(Exception, match=r"(?i)timed out|transport|broker"):
        kafka_probe({"bootstrap.servers": closed}, topic, 2)()
    with pytest.raises(Exception, match=r"(?i)connect"):
        lake_probe(open_store(f"s3://lake-{unique}/lake", s3_endpoint=f"http://{closed}"))()


def test_a_taken_port_fails_the_start_loudly() -> None:
    from pipeline.metrics.config import MetricsConfig
    from pipeline.metrics.registry import DaemonMetrics
    from pipeline.metrics.server import MetricsServer

    metrics, cfg = DaemonMetrics("archiver", "g"), MetricsConfig()
    first = MetricsServer(metrics, cfg, {}, host="127.0.0.1", port=0)
    first.start()
    try:
        assert get(f"http://127.0.0.1:{first.port}/healthz") == (
            503, "the poll loop has not started\n")
        second = MetricsServer(metrics, cfg, {}, host="127.0.0.1", port=first.port)
        with pytest.raises(OSError):
            second.start()
    finally:
        first.close()
