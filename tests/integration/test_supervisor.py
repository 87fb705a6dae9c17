"""The supervisor with real processes: small Python children that crash, get SIGKILLed, flush on
SIGTERM or ignore it; Ctrl-C on a supervisor process; and one real daemon, ``trailpipe consume
archiver`` against the broker and S3, SIGKILLed mid-stream and restarted, the lake still holding
each record exactly once."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_archiver import (
    FAST_GROUPS,
    assert_exactly_once,
    generate,
    lake_objects,
    lake_rows,
    make_lake,
    wait_committed,
)

from pipeline.supervisor.children import cli_argv
from pipeline.supervisor.config import RunConfig
from pipeline.supervisor.process import Child, Supervisor, monotonic_ms

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

# A child that notes its start, prints to stdout and stderr, and on SIGTERM writes its marker
# ("flushed <pid>") and exits 0, like a daemon flushing; argv: MARKER [ignore-sigterm|crash N].
CHILD = """
import os, signal, sys, time
marker, mode = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
def flush(*_):
    with open(marker, "a") as f:
        f.write(f"flushed {os.getpid()}\\n")
    sys.exit(0)
# the handler before the start marker: a test that stops the child once it started waits for
# a child that can flush
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore-sigterm" else flush)
with open(marker + ".started", "a") as f:
    f.write(f"{os.getpid()}\\n")
print("hello on stdout", flush=True)
print("hello on stderr", file=sys.stderr, flush=True)
if mode == "crash":
    sys.exit(int(sys.argv[3]))
while True:
    time.sleep(0.05)
"""


def child(tmp_path: Path, name: str, *args: str) -> Child:
    return Child(name, (sys.executable, "-c", CHILD, str(tmp_path / name), *args),
                 tmp_path / "run-logs" / f"{name}.log")


def starts(tmp_path: Path, name: str) -> list[int]:
    path = tmp_path / f"{name}.started"
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


@contextmanager
def supervising(sup: Supervisor) -> Iterator[dict[str, int]]:
    """Run ``sup`` in a thread; on exit stop it; the yielded dict gets its exit code."""
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.update(code=sup.run(poll_interval_s=0.02)))
    thread.start()
    try:
        yield result
    finally:
        sup.request_stop()
        thread.join(60)
        assert not thread.is_alive(), "the supervisor did not stop"


def pid_of(sup: Supervisor, name: str) -> int | None:
    return next(s.pid for s in sup.status() if s.name == name)


def fast(**settings: int) -> RunConfig:
    return RunConfig.model_validate({"restart_backoff_ms": 200, "restart_backoff_max_ms": 800,
                                     "stable_after_ms": 60_000, "stop_timeout_ms": 10_000,
                                     **settings})


def test_a_crashing_child_is_restarted_with_growing_delays(tmp_path: Path) -> None:
    sup = Supervisor([child(tmp_path, "crasher", "crash", "1")], fast())
    with supervising(sup):
        wait_until(lambda: len(sup.events) >= 5, "five crashes")
    events = list(sup.events)[:5]
    assert [(e.name, e.exit_code, e.signal) for e in events] == [("crasher", 1, None)] * 5
    assert [e.attempt for e in events] == [1, 2, 3, 4, 5]
    assert [e.next_delay_ms for e in events] == [200, 400, 800, 800, 800]
    # Each restart waited at least its delay (the crash after it came later still).
    for before, after in itertools.pairwise(events):
        assert after.at_ms - before.at_ms >= (before.next_delay_ms or 0)
    assert len(starts(tmp_path, "crasher")) >= 5
    log_text = (tmp_path / "run-logs" / "crasher.log").read_text()
    assert log_text.count("hello on stdout") >= 5 and log_text.count("hello on stderr") >= 5


def test_a_child_exiting_2_bad_config_is_not_restarted_and_the_stop_is_not_clean(
        tmp_path: Path) -> None:
    sup = Supervisor([child(tmp_path, "misconfigured", "crash", "2"),
                      child(tmp_path, "fine")], fast())
    with supervising(sup) as result:
        event = wait_until(lambda: list(sup.events), "the exit of misconfigured")[0]
        assert (event.exit_code, event.restarting) == (2, False)
        # Past the time of the restart a crash would have got (200 ms): none came.
        wait_until(lambda: monotonic_ms() > event.at_ms + 1_000, "a second after the exit")
        assert pid_of(sup, "misconfigured") is None and starts(tmp_path, "fine")
    assert result["code"] == 1
    assert len(starts(tmp_path, "misconfigured")) == 1


def test_a_sigkilled_child_is_restarted_and_stop_flushes_every_child(tmp_path: Path) -> None:
    names = ["one", "two", "three"]
    sup = Supervisor([child(tmp_path, n) for n in names], fast())
    with supervising(sup) as result:
        wait_until(lambda: all(starts(tmp_path, n) for n in names), "every child to start")
        first = pid_of(sup, "two")
        assert first is not None and starts(tmp_path, "two") == [first]
        os.kill(first, signal.SIGKILL)
        event = wait_until(lambda: list(sup.events), "the SIGKILL to be noticed")[0]
        assert (event.name, event.signal, event.exit_code, event.attempt) == \
            ("two", "SIGKILL", None, 1)
        second = wait_until(lambda: len(starts(tmp_path, "two")) == 2 and pid_of(sup, "two"),
                            "two to be restarted")
        assert second != first and starts(tmp_path, "two") == [first, second]
    assert result["code"] == 0
    for name in names:
        pid = starts(tmp_path, name)[-1]
        assert (tmp_path / name).read_text() == f"flushed {pid}\n"  # SIGTERM reached it once
    assert [s.restarts for s in sup.status()] == [0, 1, 0]
    assert all(s.pid is None for s in sup.status())


def test_a_child_stopped_while_still_starting_is_a_clean_stop(tmp_path: Path) -> None:
    # No handler installed yet (a daemon importing its modules): SIGTERM ends it at once, and
    # it had read and written nothing, so the stop is clean.
    starting = Child("starting", (sys.executable, "-c", "import time; time.sleep(60)"),
                     tmp_path / "run-logs" / "starting.log")
    sup = Supervisor([starting, child(tmp_path, "up")], fast())
    with supervising(sup) as result:
        wait_until(lambda: starts(tmp_path, "up"), "the other child to start")
    assert result["code"] == 0
    assert not sup.events  # not counted as a crash either


def test_a_child_ignoring_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    sup = Supervisor([child(tmp_path, "stubborn", "ignore-sigterm"), child(tmp_path, "polite")],
                     fast(stop_timeout_ms=1_500))
    with supervising(sup) as result:
        wait_until(lambda: starts(tmp_path, "stubborn") and starts(tmp_path, "polite"),
                   "both children to start")
    assert result["code"] == 1
    stubborn = starts(tmp_path, "stubborn")[0]
    assert not (tmp_path / "stubborn").exists()
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(stubborn, 0)
    assert (tmp_path / "polite").read_text() == f"flushed {starts(tmp_path, 'polite')[0]}\n"


SUPERVISOR = """
import json, sys
from pathlib import Path
from pipeline.supervisor.config import RunConfig
from pipeline.supervisor.process import Child, Supervisor
specs, stop_timeout_ms = json.loads(sys.argv[1]), int(sys.argv[2])
children = [Child(name, tuple(argv), Path(log)) for name, argv, log in specs]
sup = Supervisor(children, RunConfig(stop_timeout_ms=stop_timeout_ms))
sup.install_signal_handlers()
sys.exit(sup.run())
"""


def start_supervisor(children: list[Child], stop_timeout_ms: int) -> subprocess.Popen[str]:
    """A supervisor process leading its own process group, like one started on a terminal."""
    specs = [(c.name, list(c.argv), str(c.log_path)) for c in children]
    return subprocess.Popen([sys.executable, "-c", SUPERVISOR, json.dumps(specs),
                             str(stop_timeout_ms)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


@contextmanager
def killed_at_exit(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_ctrl_c_on_the_terminal_stops_the_supervisor_which_stops_its_children(
        tmp_path: Path) -> None:
    children = [child(tmp_path, "a"), child(tmp_path, "b")]
    with killed_at_exit(start_supervisor(children, 10_000)) as proc:
        wait_until(lambda: starts(tmp_path, "a") and starts(tmp_path, "b"), "both children")
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
        out, _ = proc.communicate(timeout=30)
    # The children did not get the SIGINT (own process groups), only the SIGTERM after it.
    assert proc.returncode == 0, out
    for name in ("a", "b"):
        assert (tmp_path / name).read_text() == f"flushed {starts(tmp_path, name)[0]}\n"
    assert "stop_requested" in out and "hello" not in out  # children's output is in files


def test_a_second_ctrl_c_kills_the_children_still_flushing(tmp_path: Path) -> None:
    children = [child(tmp_path, "stubborn", "ignore-sigterm"), child(tmp_path, "polite")]
    with killed_at_exit(start_supervisor(children, 600_000)) as proc:  # would wait 10 min
        wait_until(lambda: starts(tmp_path, "stubborn") and starts(tmp_path, "polite"),
                   "both children")
        os.killpg(proc.pid, signal.SIGINT)
        wait_until(lambda: (tmp_path / "polite").exists(), "polite to flush")
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "stop_hurried" in out and "child_killed" in out
    with pytest.raises(ProcessLookupError):
        os.kill(starts(tmp_path, "stubborn")[0], 0)


def archiver_child(lake: dict[str, Any], log_dir: Path) -> Child:
    """``trailpipe consume archiver`` for ``lake`` (test_archiver.make_lake), as run would."""
    env = {**FAST_GROUPS, "TRAILPIPE_LOG__FORMAT": "json",
           **{f"TRAILPIPE_TOPICS__{role.upper()}": t for role, t in lake["topics"].items()},
           **{f"TRAILPIPE_ARCHIVER__{k.upper()}": str(v) for k, v in lake["archiver"].items()}}
    argv = cli_argv("consume", "archiver", "--bootstrap", lake["kafka"], "--lake",
                    f"s3://{lake['bucket']}/lake", "--s3-endpoint", lake["s3"])
    return Child("archiver", argv, log_dir / "archiver.log", env, REPO)


def test_a_sigkilled_archiver_is_restarted_and_the_lake_stays_exactly_once(
        kafka: Any, s3_endpoint: str, make_topic: Any, unique: str, tmp_path: Path) -> None:
    lake = make_lake(kafka, make_topic, unique, s3_endpoint, partitions=3, max_age_ms=1_000)
    arch = archiver_child(lake, tmp_path)
    log = arch.log_path
    producing = generate(kafka, lake["topics"]["events"], 24_000, 2_000, background=True)
    assert isinstance(producing, subprocess.Popen)
    sup = Supervisor([arch], fast(restart_backoff_ms=500, stop_timeout_ms=30_000))
    with supervising(sup) as result:
        wait_until(lambda: log.exists() and "archiver_flushed" in log.read_text(),
                   "the archiver's first object", 30)
        first = pid_of(sup, "archiver")
        assert first is not None
        mid_stream = producing.poll() is None  # reported, not asserted: a busy box is slow
        os.kill(first, signal.SIGKILL)
        event = wait_until(lambda: list(sup.events), "the SIGKILL to be noticed")[0]
        assert (event.name, event.signal, event.attempt) == ("archiver", "SIGKILL", 1)
        wait_until(lambda: pid_of(sup, "archiver") not in (None, first), "the restart")
        assert producing.wait(60) == 0
        ends = wait_committed(lake, 60)
    assert result["code"] == 0, log.read_text()[-3000:]
    assert sum(ends.values()) == 24_000
    # The restarted archiver wrote part of the lake (its run is after the last start).
    assert "archiver_flushed" in log.read_text().rsplit('"daemon_built"', 1)[1]
    rows = lake_rows(lake_objects(s3_endpoint, lake["bucket"]))
    assert_exactly_once(rows, {p: range(end) for p, end in ends.items()})
    print(f"\narchiver SIGKILLed {'while' if mid_stream else 'after'} the generator produced; "
          f"restarted after {event.next_delay_ms} ms; {rows.num_rows} rows exactly once")
