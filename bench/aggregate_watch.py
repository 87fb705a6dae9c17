"""Draining the events topic with one subprocess (the aggregator, or the Quix app) for the
``aggregate`` scenario: watch its group's committed offsets from outside, read its peak RSS
and CPU time from /proc, stop it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.aggregate_setup import STOP_GRACE_S, WATCH_EVERY_S
from bench.archive_drain import Drain, GroupWatch, _proc_status, end_offsets
from bench.common import BenchError, terminate
from pipeline.dev import procs


class _Child:
    """The subprocess, its log files, and the failure message that names them."""

    def __init__(self, argv: list[str], log_dir: Path, name: str) -> None:
        self.out, self.log, self.name = log_dir / f"{name}.stdout", log_dir / f"{name}.log", name
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILPIPE_")}
        with open(self.out, "wb") as out, open(self.log, "wb") as err:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, cwd=log_dir)

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.proc.returncode}; {self.log}:\n"
                             f"{procs.tail(self.log, 15)}")


def _committed_all(watch: GroupWatch, ends: Mapping[int, int]) -> tuple[bool, int]:
    committed = watch.committed()
    done = sum(min(committed.get(p, 0), end) for p, end in ends.items())
    return all(committed.get(p, 0) >= end for p, end in ends.items()), done


def _wait_internal(child: _Child, bootstrap: str, group: str, topics: list[str],
                   deadline_s: float) -> bool:
    """Wait until ``group`` committed every internal topic to its end (read once the events
    are committed: at-least-once, nothing more gets produced to them)."""
    for topic in topics:
        ends = end_offsets(bootstrap, topic)
        watch = GroupWatch(bootstrap, group, topic)
        try:
            while not _committed_all(watch, ends)[0]:
                child.check_alive()
                if child.elapsed_s() > deadline_s:
                    return False
                time.sleep(WATCH_EVERY_S)
        finally:
            watch.close()
    return True


def drain(argv: list[str], log_dir: Path, name: str, *, bootstrap: str, group: str,
          topic: str, ends: Mapping[int, int], timeout_s: float,
          internal: Callable[[], list[str]] = list) -> tuple[Drain, float | None]:
    """Spawn ``argv``; wait until ``group`` committed ``topic`` up to ``ends`` and then the
    ``internal()`` topics (Quix's repartition topic) to their ends, or ``timeout_s``; read
    RSS/CPU; SIGTERM it. Returns the drain (``elapsed_s`` up to the end of it all) and the
    seconds from the spawn until ``topic`` alone was committed (None on a timeout)."""
    child = _Child(argv, log_dir, name)
    watch = GroupWatch(bootstrap, group, topic)
    startup = stage1 = None
    complete, committed = False, 0
    try:
        while child.elapsed_s() <= timeout_s:
            child.check_alive()
            if startup is None and watch.assigned():
                startup = child.elapsed_s()
            done, committed = _committed_all(watch, ends)
            if done:
                stage1 = child.elapsed_s()
                complete = _wait_internal(child, bootstrap, group, internal(), timeout_s)
                break
            time.sleep(WATCH_EVERY_S)
        elapsed = child.elapsed_s()
        rss, cpu = _proc_status(child.proc.pid)
    finally:
        watch.close()
        terminate(child.proc, STOP_GRACE_S)
    drained = Drain(sum(ends.values()), committed, startup, elapsed, rss, cpu, None,
                    child.out.read_text(errors="replace"), complete)
    return drained, stage1
