"""Runner conformance against the real broker: crash, poison, outage, rebalance, SIGTERM,
transactions. The durable sink (runner_app.FileSink) lets every test count offsets."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from kit import assert_fully_committed, committed, produce, read_all, read_jsonl
from runner_app import UNDECODABLE, EchoProcessor, FileSink, build

from pipeline.config import RunnerConfig
from pipeline.model import KafkaRecord

pytestmark = pytest.mark.integration
MODES = ["record", "batch"]
APP = Path(__file__).with_name("runner_app.py")
_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_leftover_daemons() -> Iterator[None]:
    """A failing or timed-out test must not leave a daemon running."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture(params=MODES)
def batch(request) -> bool:
    """Every conformance test runs in both Runner modes: per record and batch (columnar)."""
    return request.param == "batch"


def start_app(kafka, topic: str, group: str, *extra: str, batch: bool) -> subprocess.Popen[str]:
    """Start runner_app as a real process; its JSON log goes to a file (``proc.log_path``) so a
    full pipe can never block it. ``batch``: the Runner's batch mode, 100 messages a poll."""
    if batch:
        extra = (*extra, "--batch", "--batch-size", "100")
    log_path = Path(tempfile.mkstemp(prefix="runner_app.", suffix=".log")[1])
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(APP), "--bootstrap", kafka.bootstrap, "--topic", topic,
             "--group", group, *extra], stdout=subprocess.DEVNULL, stderr=log, text=True)
    proc.log_path = log_path  # type: ignore[attr-defined]
    _started.append(proc)
    return proc


def wait_for_log(proc: subprocess.Popen[str], event: str, timeout_s: float = 60) -> None:
    """Wait until the daemon's JSON log has a line naming ``event``."""
    deadline = time.monotonic() + timeout_s
    needle = f'"event": "{event}"'
    while time.monotonic() < deadline:
        if needle in proc.log_path.read_text():  # type: ignore[attr-defined]
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"daemon never logged {event}")


def coords(rows: list[dict]) -> Counter[tuple[int, int]]:
    return Counter((r["partition"], r["offset"]) for r in rows)


def test_poison_record_is_dead_lettered_and_loop_goes_on(kafka, make_topic, unique, tmp_path,
                                                         batch):
    topic, dlq = make_topic("in", 3), make_topic("dlq", 1)
    bad = {3: b"poison", 17: b"poison", 29: b"poison", 8: UNDECODABLE, 33: UNDECODABLE}
    values = [bad.get(i, f"v{i}".encode()) for i in range(40)]
    produce(kafka.bootstrap, topic, values)
    sink = FileSink(tmp_path / "out.jsonl", max_records=5)
    runner = build(kafka.bootstrap, topic, f"g-{unique}", sink=sink, processor=EchoProcessor(),
                   runner_cfg=RunnerConfig(commit_interval_ms=200), dlq_topic=dlq, batch=batch)
    stats = runner.run(idle_exit_s=3)

    assert (stats.consumed, stats.processed, stats.dead_lettered) == (40, 35, 5)
    rows = read_jsonl(sink.path)
    assert sorted(r["value"] for r in rows) == sorted(v.decode() for v in values
                                                      if v not in bad.values())
    dead = read_all(kafka.bootstrap, dlq, expected=5)
    assert sorted(m.value() for m in dead) == sorted(bad.values())
    source = {(m.partition(), m.offset()): m.value()
              for m in read_all(kafka.bootstrap, topic, expected=40)}
    for msg in dead:
        h = dict(msg.headers())
        assert h["x-error-type"] == b"ValueError"
        assert (b"poison record" if msg.value() == b"poison" else b"undecodable") in h["x-error"]
        assert h["x-source-topic"] == topic.encode()
        where = (int(h["x-source-partition"]), int(h["x-source-offset"]))
        assert source[where] == msg.value()
    assert_fully_committed(kafka.bootstrap, f"g-{unique}", topic, 3)


def test_sigkill_after_flush_before_commit_reprocesses(kafka, make_topic, unique, tmp_path,
                                                       batch):
    topic, out = make_topic("in", 1), tmp_path / "out.jsonl"
    produce(kafka.bootstrap, topic, (f"v{i}".encode() for i in range(50)))
    crashed = start_app(kafka, topic, f"g-{unique}", "--out", str(out), "--max-records", "20",
                        "--crash-after-flush", "--commit-interval-ms", "60000", batch=batch)
    assert crashed.wait(60) == -signal.SIGKILL
    flushed = sorted(coords(read_jsonl(out)))
    assert len(flushed) >= 20 and flushed == [(0, i) for i in range(len(flushed))]
    assert committed(kafka.bootstrap, f"g-{unique}", topic, 1) == {0: -1001}

    again = start_app(kafka, topic, f"g-{unique}", "--out", str(out), "--idle-exit-s", "3",
                      batch=batch)
    assert again.wait(60) == 0
    seen = coords(read_jsonl(out))
    assert all(seen[c] == 2 for c in flushed)  # flushed but uncommitted: re-processed
    assert sorted(seen) == [(0, i) for i in range(50)]
    assert sum(seen.values()) == 50 + len(flushed)
    assert committed(kafka.bootstrap, f"g-{unique}", topic, 1) == {0: 50}


def test_sink_outage_pauses_rewinds_and_commits_nothing_unflushed(kafka, make_topic, unique,
                                                                  tmp_path, batch):
    topic, group = make_topic("in", 3), f"g-{unique}"
    produce(kafka.bootstrap, topic, (f"v{i}".encode() for i in range(300)))
    flag = tmp_path / "s3-down"
    flag.touch()
    sink = FileSink(tmp_path / "out.jsonl", max_records=50, fail_flag=flag)
    cfg = RunnerConfig(flush_retry_budget_ms=300, flush_retry_backoff_ms=50,
                       backpressure_pause_ms=700, commit_interval_ms=200)
    runner = build(kafka.bootstrap, topic, group, sink=sink, processor=EchoProcessor(),
                   runner_cfg=cfg, batch=batch)
    during: list[dict[int, int]] = []

    def outage() -> None:
        for _ in range(8):
            during.append(committed(kafka.bootstrap, group, topic, 3))
            time.sleep(0.4)
        flag.unlink()

    monitor = threading.Thread(target=outage)
    monitor.start()
    with structlog.testing.capture_logs() as logs:
        stats = runner.run(idle_exit_s=5)
    monitor.join()

    assert sink.failures >= 2 and stats.rewinds >= 2
    events = [e["event"] for e in logs]
    assert any(e["event"] == "rewound" and e["paused"] for e in logs)
    assert "backpressure_resumed" in events
    assert all(off == -1001 for snap in during for off in snap.values())  # nothing committed
    rows = read_jsonl(sink.path)
    assert len(rows) == 300 and len(coords(rows)) == 300  # all written, each once
    assert_fully_committed(kafka.bootstrap, group, topic, 3)


def test_an_unavailable_decoder_rewinds_pauses_and_loses_nothing(kafka, make_topic, unique,
                                                                 tmp_path, batch):
    topic, group = make_topic("in", 3), f"g-{unique}"
    produce(kafka.bootstrap, topic, (f"v{i}".encode() for i in range(300)))
    sink = FileSink(tmp_path / "out.jsonl", max_records=50)
    cfg = RunnerConfig(backpressure_pause_ms=500, commit_interval_ms=200, batch_size=100)
    runner = build(kafka.bootstrap, topic, group, sink=sink, processor=EchoProcessor(),
                   runner_cfg=cfg, batch=batch, unavailable_calls=3)
    with structlog.testing.capture_logs() as logs:
        stats = runner.run(idle_exit_s=4)

    assert stats.rewinds >= 1 and stats.dead_lettered == 0
    assert any(e["event"] == "input_unavailable" for e in logs)
    assert stats.consumed == stats.processed  # nothing counted twice or lost in the outage
    rows = read_jsonl(sink.path)
    assert len(rows) == 300 and len(coords(rows)) == 300  # all written, each once
    assert_fully_committed(kafka.bootstrap, group, topic, 3)


def test_rebalance_under_load_loses_and_duplicates_nothing(kafka, make_topic, unique, tmp_path,
                                                          batch):
    topic, group, total = make_topic("in", 6), f"g-{unique}", 30_000

    def load() -> None:
        for chunk in range(30):
            produce(kafka.bootstrap, topic, (f"v{chunk}-{i}".encode() for i in range(1000)))
            time.sleep(0.25)

    producer = threading.Thread(target=load)
    a = start_app(kafka, topic, group, "--out", str(tmp_path / "a.jsonl"), batch=batch)
    wait_for_log(a, "partitions_assigned")
    producer.start()
    time.sleep(2)
    b = start_app(kafka, topic, group, "--out", str(tmp_path / "b.jsonl"), "--idle-exit-s", "6",
                  batch=batch)
    wait_for_log(b, "partitions_assigned")  # b joined: the group rebalanced under load
    time.sleep(2)
    a.send_signal(signal.SIGTERM)  # a leaves: b takes over every partition
    assert a.wait(30) == 0
    producer.join()
    assert b.wait(120) == 0

    rows = read_jsonl(tmp_path / "a.jsonl") + read_jsonl(tmp_path / "b.jsonl")
    seen = coords(rows)
    assert len(rows) == total and len(seen) == total, "lost or duplicated records"
    assert_fully_committed(kafka.bootstrap, group, topic, 6)
    assert read_jsonl(tmp_path / "a.jsonl") and read_jsonl(tmp_path / "b.jsonl")


def test_sigterm_flushes_commits_and_exits_zero_within_grace(kafka, make_topic, unique,
                                                             tmp_path, batch):
    topic, group, out = make_topic("in", 3), f"g-{unique}", tmp_path / "out.jsonl"
    produce(kafka.bootstrap, topic, (f"v{i}".encode() for i in range(1000)))
    app = start_app(kafka, topic, group, "--out", str(out), "--max-records", "100000",
                    "--commit-interval-ms", "600000", "--shutdown-grace-s", "5", batch=batch)
    wait_for_log(app, "partitions_assigned")
    time.sleep(3)  # consume everything; nothing is flushed or committed yet (sizes too large)
    assert read_jsonl(out) == []
    started = time.monotonic()
    app.send_signal(signal.SIGTERM)
    assert app.wait(30) == 0
    assert time.monotonic() - started < 5 + 2  # grace plus process exit
    assert len(coords(read_jsonl(out))) == 1000
    assert_fully_committed(kafka.bootstrap, group, topic, 3)


def test_transactional_daemon_killed_mid_transaction_leaves_no_visible_output(
        kafka, make_topic, unique, batch):
    src, dst, group = make_topic("in", 1), make_topic("out", 1), f"g-{unique}"
    produce(kafka.bootstrap, src, (f"v{i}".encode() for i in range(1000)))
    txn = ["--output-topic", dst, "--transactional-id", f"txn-{unique}"]
    killed = start_app(kafka, src, group, *txn, "--kill-after-outputs", "600",
                       "--commit-interval-ms", "600000", batch=batch)
    assert killed.wait(60) == -signal.SIGKILL
    partial = read_all(kafka.bootstrap, dst, read_committed=False, timeout_s=10)
    assert len(partial) >= 1, "the killed daemon wrote nothing; the test would prove nothing"
    assert read_all(kafka.bootstrap, dst, read_committed=True, timeout_s=5) == []

    again = start_app(kafka, src, group, *txn, "--idle-exit-s", "4", batch=batch)
    assert again.wait(90) == 0
    visible = read_all(kafka.bootstrap, dst, read_committed=True, expected=1000)
    values = Counter(m.value() for m in visible)
    assert len(visible) == 1000 and len(values) == 1000  # the aborted part never shows
    assert committed(kafka.bootstrap, group, src, 1) == {0: 1000}


class _BothOutputs(EchoProcessor):
    """Emits a Kafka output and a sink row per record (a transactional daemon with a sink)."""

    def __init__(self, output_topic: str) -> None:
        super().__init__()
        self.kafka_topic = output_topic

    def process(self, event):
        rows = list(super().process(event))
        return [*rows, KafkaRecord(self.kafka_topic, value=event.value, key=event.key)]

    def process_batch(self, table):
        rows = list(super().process_batch(table))
        return [*rows, *(KafkaRecord(self.kafka_topic, value=v, key=k) for v, k in
                         zip(table["value"].to_pylist(), table["_key"].to_pylist(), strict=True))]


def test_transactional_sink_failure_aborts_the_open_transaction(kafka, make_topic, unique,
                                                                 tmp_path, batch):
    src, dst, group = make_topic("in", 2), make_topic("out", 1), f"g-{unique}"
    produce(kafka.bootstrap, src, (f"v{i}".encode() for i in range(400)))
    flag = tmp_path / "sink-down"
    flag.touch()
    sink = FileSink(tmp_path / "out.jsonl", max_records=100, fail_flag=flag)
    cfg = RunnerConfig(flush_retry_budget_ms=200, flush_retry_backoff_ms=50,
                       backpressure_pause_ms=500, commit_interval_ms=200)
    runner = build(kafka.bootstrap, src, group, sink=sink, processor=_BothOutputs(dst),
                   runner_cfg=cfg, transactional_id=f"txn-{unique}", batch=batch)
    def recover() -> None:  # the sink comes back after the Runner has rewound twice
        deadline = time.monotonic() + 60
        while runner.stats.rewinds < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        flag.unlink()

    threading.Thread(target=recover).start()
    stats = runner.run(idle_exit_s=5)

    assert sink.failures >= 2 and stats.rewinds >= 2
    visible = read_all(kafka.bootstrap, dst, read_committed=True, expected=400, timeout_s=30)
    values = Counter(m.value() for m in visible)
    assert len(visible) == 400 and len(values) == 400  # aborted copies never show
    assert len(coords(read_jsonl(sink.path))) == 400 == len(read_jsonl(sink.path))
