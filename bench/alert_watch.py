"""Watching an alerter process from outside: its group's committed offsets on the events and
the internal hits topics, and its peak RSS and CPU time from /proc."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.alert_setup import WATCH_EVERY_S, Alerter
from bench.archive_drain import GroupWatch, _proc_status, end_offsets
from bench.common import BenchError
from pipeline.dev import procs


@dataclass(frozen=True, slots=True)
class Drain:
    """Seconds since the spawn until: the group had partitions (``startup_s``), every event
    offset was committed (``stage1_s``), the hits topic was drained too (``done_s``)."""

    startup_s: float
    stage1_s: float
    done_s: float
    peak_rss_mb: float | None
    cpu_s: float | None


def _hits_drained(watch: GroupWatch, bootstrap: str, topic: str) -> bool:
    """Every hits partition committed up to its last record. The last offset of a partition
    written only in transactions is a commit marker, so the last record is at end - 2 and
    its committed offset end - 1. Read the commits first: the ends are then at least as new,
    and nothing uncommitted is left to produce more hits."""
    committed = watch.committed()
    return all(committed.get(p, 0) >= end - 1
               for p, end in end_offsets(bootstrap, topic).items() if end > 0)


def fail(alerter: Alerter, why: str) -> BenchError:
    return BenchError(f"{why}; {alerter.log}:\n{procs.tail(alerter.log, 15)}")


def wait_assigned(alerter: Alerter, bootstrap: str, group: str, topic: str,
                  timeout_s: float) -> float:
    """Seconds from the spawn until the group has partitions assigned."""
    watch = GroupWatch(bootstrap, group, topic)
    try:
        while not watch.assigned():
            if alerter.proc.poll() is not None:
                raise fail(alerter, f"the alerter exited with {alerter.proc.returncode}")
            if time.monotonic() - alerter.started > timeout_s:
                raise fail(alerter, f"the alerter had no partitions after {timeout_s:.0f}s")
            time.sleep(WATCH_EVERY_S)
        return time.monotonic() - alerter.started
    finally:
        watch.close()


def wait_drained(alerter: Alerter, bootstrap: str, group: str, topics: dict[str, str],
                 ends: dict[int, int], timeout_s: float) -> Drain:
    """Poll the group until the events up to ``ends`` and then the hits are all committed."""
    events = GroupWatch(bootstrap, group, topics["events"])
    hits = GroupWatch(bootstrap, group, topics["alerter_hits"])
    startup = stage1 = None
    try:
        while True:
            if alerter.proc.poll() is not None:
                raise fail(alerter, f"the alerter exited with {alerter.proc.returncode}")
            if startup is None and events.assigned():
                startup = time.monotonic() - alerter.started
            if stage1 is None:
                committed = events.committed()
                if all(committed.get(p, 0) >= end for p, end in ends.items()):
                    stage1 = time.monotonic() - alerter.started
            if stage1 is not None and _hits_drained(hits, bootstrap, topics["alerter_hits"]):
                done = time.monotonic() - alerter.started
                rss, cpu = _proc_status(alerter.proc.pid)
                return Drain(startup or 0.0, stage1, done, rss, cpu)
            if time.monotonic() - alerter.started > timeout_s:
                raise fail(alerter, f"the alerter did not drain {sum(ends.values())} events "
                           f"in {timeout_s:.0f}s")
            time.sleep(WATCH_EVERY_S)
    finally:
        events.close()
        hits.close()
