"""Draining a topic with a daemon subprocess for the ``archive`` scenario: watch the group's
committed offsets reach the end, read peak RSS and CPU from /proc, stop it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.archive_setup import AWS_ENV, FLUSH_INTERVAL_S, PARTITIONS, STOP_GRACE_S, WATCH_EVERY_S
from bench.common import BenchError, terminate
from pipeline.dev import procs


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-archive-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)}
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------- drains

def _proc_status(pid: int) -> tuple[float | None, float | None]:
    """(peak RSS MiB from VmHWM, CPU seconds user+system) of a live process."""
    rss = cpu = None
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    with suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


@dataclass(slots=True)
class Drain:
    """One subprocess draining the topic, as seen from outside."""

    events: int
    committed: int
    startup_s: float | None  # spawn -> partitions assigned
    elapsed_s: float  # spawn -> every offset committed (or the timeout)
    peak_rss_mb: float | None
    cpu_s: float | None
    helper_cpu_s: float | None  # the S3 server's CPU during the drain
    stdout: str
    complete: bool
    notes: list[str] = field(default_factory=list)

    @property
    def drain_s(self) -> float:
        return self.elapsed_s - (self.startup_s or 0.0)

    @property
    def events_per_s(self) -> float:
        return self.committed / self.drain_s if self.drain_s > 0 else 0.0

    @property
    def events_per_s_incl_startup(self) -> float:
        return self.committed / self.elapsed_s if self.elapsed_s > 0 else 0.0


class GroupWatch:
    """Polls a consumer group: when it first has partitions assigned, how far it committed.

    Committed offsets are read by a Consumer of the group that never subscribes (so never
    joins): AdminClient.list_consumer_group_offsets crashes librdkafka 2.16 (a NULL consumer
    group handle in rd_kafka_handle_OffsetFetch) when the coordinator of a fresh cluster is
    still loading."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
        self.offsets = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                 "enable.auto.commit": False, "log_level": 3})
        self.group = group
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def assigned(self) -> bool:
        try:
            desc = self.admin.describe_consumer_groups([self.group])[self.group].result(
                timeout=5)
        except KafkaException:
            return False
        return any(m.assignment and m.assignment.topic_partitions for m in desc.members)

    def committed(self) -> dict[int, int]:
        try:
            res = self.offsets.committed(self.partitions, timeout=5)
        except KafkaException:
            return {}
        return {tp.partition: tp.offset for tp in res if tp.error is None and tp.offset >= 0}

    def close(self) -> None:
        self.offsets.close()


def drain(argv: list[str], env: Mapping[str, str], log_dir: Path, name: str, *,
          watch: GroupWatch, ends: dict[int, int], timeout_s: float, helper_pid: int,
          partial_ok: bool) -> Drain:
    """Spawn ``argv``; wait until ``watch``'s group committed ``ends``; read RSS/CPU; SIGTERM."""
    events = sum(ends.values())
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.log"
    _, helper_cpu0 = _proc_status(helper_pid)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.monotonic()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env={**os.environ, **env}, cwd=log_dir)
    startup: float | None = None
    committed: dict[int, int] = {}
    complete = False
    try:
        while True:
            now = time.monotonic()
            if child.poll() is not None:
                raise BenchError(f"{name} exited with {child.returncode} before draining "
                                 f"({sum(committed.values())}/{events} committed); "
                                 f"{err_path}:\n{procs.tail(err_path, 15)}")
            if startup is None and watch.assigned():
                startup = time.monotonic() - t0
            committed = watch.committed()
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                complete, elapsed = True, time.monotonic() - t0
                break
            if now - t0 > timeout_s:
                elapsed = now - t0
                if not partial_ok:
                    raise BenchError(f"{name} committed {sum(committed.values())}/{events} "
                                     f"in {timeout_s:.0f}s; {err_path}:\n"
                                     f"{procs.tail(err_path, 15)}")
                break
            time.sleep(WATCH_EVERY_S)
        rss, cpu = _proc_status(child.pid)
        _, helper_cpu1 = _proc_status(helper_pid)
    finally:
        watch.close()
        terminate(child, STOP_GRACE_S)
    helper = None if helper_cpu0 is None or helper_cpu1 is None else helper_cpu1 - helper_cpu0
    done = min(sum(committed.get(p, 0) for p in ends), events)
    result = Drain(events, done, startup, elapsed, rss, cpu, helper,
                   out_path.read_text(errors="replace"), complete)
    if not complete:
        result.notes.append(f"timed out after {timeout_s:.0f}s with {done:,}/{events:,} "
                            "committed; rate over what was committed")
    return result


def archiver_env(topics: Mapping[str, str]) -> dict[str, str]:
    return {**AWS_ENV,
            "TRAILPIPE_TOPICS__EVENTS": topics["events"],
            "TRAILPIPE_TOPICS__DELIVERIES": topics["deliveries"],
            "TRAILPIPE_TOPICS__HEALTH": topics["health"],
            "TRAILPIPE_ARCHIVER__MAX_AGE_MS": str(int(FLUSH_INTERVAL_S * 1000)),
            "TRAILPIPE_TOPICS__DLQ": topics["dlq"],
            "TRAILPIPE_LOG__LEVEL": "warning", "TRAILPIPE_LOG__FORMAT": "json"}


def _summary(stdout: str) -> dict[str, Any]:
    """The archiver's JSON summary (its last stdout line)."""
    for line in reversed(stdout.strip().splitlines()):
        with suppress(json.JSONDecodeError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                return doc
    return {}


# ---------------------------------------------------------------------------------- scenario

def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


