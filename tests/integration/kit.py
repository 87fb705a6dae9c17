"""Small helpers for integration tests: produce, read back, committed offsets, JSONL files."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicPartition

REPO = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, topic: str, values: Iterable[bytes],
            key: bytes | None = None) -> int:
    """Produce values (idempotent, acks=all) and wait for every delivery; returns the count."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    errors: list[Any] = []
    count = 0
    for value in values:
        producer.produce(topic, value=value, key=key,
                         on_delivery=lambda err, _m: errors.append(err) if err else None)
        count += 1
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors
    return count


def read_all(bootstrap: str, topic: str, *, expected: int | None = None,
             read_committed: bool = True, timeout_s: float = 20) -> list[Message]:
    """Read a topic from the start with a throwaway group until ``expected`` records arrived,
    or (when None) until it has been quiet for 2 s, or ``timeout_s`` passed."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed" if read_committed
                         else "read_uncommitted"})
    consumer.subscribe([topic])
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if expected is not None and len(out) >= expected:
                break
            if expected is None and out and time.monotonic() - quiet_since > 2:
                break
            msgs = [m for m in consumer.consume(1000, 0.5) if m.error() is None]
            if msgs:
                out.extend(msgs)
                quiet_since = time.monotonic()
    finally:
        consumer.close()
    return out


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                 timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def assert_fully_committed(bootstrap: str, group: str, topic: str, partitions: int) -> None:
    """The group committed every partition's end offset (partitions that never received a
    record have nothing to commit: keyless producers may leave some empty)."""
    ends = end_offsets(bootstrap, topic, partitions)
    got = committed(bootstrap, group, topic, partitions)
    assert {p: got[p] for p, e in ends.items() if e} == {p: e for p, e in ends.items() if e}
    assert all(got[p] in (-1001, 0) for p, e in ends.items() if not e)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def read_partition(bootstrap: str, topic: str, partition: int,
                   timeout_s: float = 10) -> list[Message]:
    """Every record of one partition, read with a manual assignment (no group)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"one-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    consumer.assign([TopicPartition(topic, partition, 0)])
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < high and time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(1000, 0.5) if m.error() is None)
    finally:
        consumer.close()
    return out


def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Delete these topics if present and wait until the broker no longer lists them."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = set(names)
    present = [t for t in wanted if t in admin.list_topics(timeout=10).topics]
    if present:
        for fut in admin.delete_topics(present, operation_timeout=30).values():
            fut.result(timeout=30)
    deadline = time.monotonic() + 30
    while wanted & set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, f"topics not deleted: {sorted(wanted)}"
        time.sleep(0.2)


LAUNCHER = """
import json, sys
from pipeline.config import load_config
from pipeline.daemon import Context, build_registered
from pipeline.logs import configure_logging
args = json.loads(sys.argv[1])
cfg = load_config(env={}, overrides=args["overrides"])
configure_logging(cfg.log.model_copy(update={"format": "json"}))
daemon = build_registered(args["name"], Context(cfg, args["overrides"]["kafka.bootstrap"]))
daemon.runner.install_signal_handlers()
stats = daemon.run(idle_exit_s=args["idle_exit_s"])
print(json.dumps(daemon.summary(stats)))
"""


def start_daemon(name: str, overrides: dict[str, Any], *,
                 idle_exit_s: float | None = None) -> subprocess.Popen[str]:
    """Registered daemon ``name`` as a real process (so it can be SIGKILLed), configured by
    ``overrides``; its log goes to a temp file (``proc.log_path``), its summary to stdout."""
    # A short session timeout, so a SIGKILLed member's partitions move on quickly (the
    # launcher reads no environment: config comes from the overrides alone).
    args = {"name": name, "idle_exit_s": idle_exit_s,
            "overrides": {"runner.session_timeout_ms": 6000, **overrides}}
    log_path = Path(tempfile.mkstemp(prefix=f"{name}.", suffix=".log")[1])
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, json.dumps(args)],
                                stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO)
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def wait_for_work(proc: Any, timeout_s: float = 120) -> None:
    """Until a :func:`start_daemon` process has committed a transaction (it holds partitions
    and works); fails the test when it exits or commits nothing in time."""
    import pytest

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if '"event": "offsets_committed"' in proc.log_path.read_text():
            return
        assert proc.poll() is None, proc.log_path.read_text()[-3000:]
        time.sleep(0.2)
    pytest.fail("the daemon committed nothing:\n" + proc.log_path.read_text()[-3000:])
