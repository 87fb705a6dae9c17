"""The process side of the supervisor, kept thin: spawn each :class:`Child` in its own process
group with its output in its log file, notice exits, restart when the policy says so, and stop
everyone with SIGTERM, then SIGKILL after ``[run] stop_timeout_ms``.

Children run in their own process groups, so a Ctrl-C on the terminal reaches only the
supervisor, which then stops the children in order (SIGTERM: they flush and commit).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pipeline.logs import get_logger
from pipeline.supervisor.config import RunConfig
from pipeline.supervisor.policy import RestartEvent, RestartTracker, tracker_for

log = get_logger("pipeline.supervisor")

SPAWN_FAILED_EXIT_CODE = 127
"""Reported as the exit code of a child whose program could not be started at all."""


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Child:
    """A process to supervise. ``env`` is added to the supervisor's own environment (e.g.
    ``TRAILPIPE_METRICS__PORT``); stdout and stderr are appended to ``log_path``, never shown on
    the terminal."""

    name: str
    argv: tuple[str, ...]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """What the dashboard shows per child."""

    name: str
    pid: int | None  # None while it waits for a restart (or was given up)
    restarts: int  # unexpected exits so far
    last_event: RestartEvent | None


class Supervisor:
    """Runs ``children`` until stopped. Not thread-safe except :meth:`request_stop` and
    :meth:`status`, which a signal handler or a dashboard thread may call."""

    def __init__(self, children: Sequence[Child], cfg: RunConfig, *,
                 clock_ms: Callable[[], int] = monotonic_ms,
                 on_event: Callable[[RestartEvent], None] | None = None,
                 history: int = 200) -> None:
        names = [c.name for c in children]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self._children = {c.name: c for c in children}
        self._trackers: dict[str, RestartTracker] = {n: tracker_for(n, cfg) for n in names}
        self._procs: dict[str, subprocess.Popen[bytes] | None] = dict.fromkeys(names)
        self._restarts = dict.fromkeys(names, 0)
        self._stop_timeout_ms = cfg.stop_timeout_ms
        self._clock_ms = clock_ms
        self._on_event = on_event
        self._stop = threading.Event()
        self._hurry = threading.Event()  # a second stop signal: do not wait for the flush
        self.events: deque[RestartEvent] = deque(maxlen=history)
        """The latest unexpected exits, oldest first (for the dashboard and the summary)."""

    def start(self) -> None:
        """Start every child."""
        for child in self._children.values():
            self._spawn(child)

    def poll(self) -> list[RestartEvent]:
        """Notice children that exited (an event each) and restart those whose delay passed."""
        found: list[RestartEvent] = []
        for name, proc in self._procs.items():
            now_ms = self._clock_ms()
            if proc is not None and proc.poll() is not None:
                self._procs[name] = None
                found.append(self._record(self._trackers[name].exited(proc.returncode, now_ms)))
            elif proc is None and self._trackers[name].due(now_ms):
                self._spawn(self._children[name])
        return found

    def run(self, *, duration_s: float | None = None, poll_interval_s: float = 0.1) -> int:
        """Start the children, supervise until :meth:`request_stop` or ``duration_s``, then
        :meth:`stop`; returns its exit code."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        self.start()
        try:
            while not self._stop.wait(poll_interval_s):
                self.poll()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self._stop.set()
            code = self.stop()
        return code

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """The stop has begun (a request, the duration, or an error): children are being
        stopped, so their numbers no longer describe the run."""
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        """SIGINT (Ctrl-C) and SIGTERM stop the supervisor cleanly (main thread only); a second
        one while the children flush SIGKILLs them at once."""
        def handler(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self._stop.is_set():
                log.warning("stop_hurried", signal=name)
                self._hurry.set()
            else:
                log.info("stop_requested", signal=name)
                self.request_stop()
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def stop(self) -> int:
        """SIGTERM every running child, wait up to ``stop_timeout_ms`` for all of them (less
        after a second signal), SIGKILL the rest. Returns 0 when every child exited 0 on SIGTERM
        (or was still starting: killed by it before its handler was installed) and none was
        given up, else 1. A child that exited since the last :meth:`poll` is reported first."""
        for name, proc in self._procs.items():  # exited since the last poll: reported too
            if proc is not None and proc.poll() is not None:
                self._procs[name] = None
                self._record(self._trackers[name].exited(proc.returncode, self._clock_ms()))
        running = {n: p for n, p in self._procs.items() if p is not None}
        for proc in running.values():
            _signal_group(proc, signal.SIGTERM)
        deadline_ms = self._clock_ms() + self._stop_timeout_ms
        while (any(p.poll() is None for p in running.values())
               and self._clock_ms() < deadline_ms and not self._hurry.wait(0.02)):
            pass
        clean = all(e.restarting for e in self._latest_events().values())
        for name, proc in running.items():
            if proc.poll() is None:
                log.warning("child_killed", child=name, pid=proc.pid,
                            stop_timeout_ms=self._stop_timeout_ms, hurried=self._hurry.is_set())
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            # -SIGTERM: it was still starting (its handler not installed yet), so it had
            # consumed and produced nothing: stopped, nothing to flush.
            early = proc.returncode == -signal.SIGTERM
            log.info("child_stopped", child=name, pid=proc.pid, returncode=proc.returncode,
                     **({"before_start": True} if early else {}))
            clean = clean and (proc.returncode == 0 or early)
        self._procs = dict.fromkeys(self._procs)
        return 0 if clean else 1

    def status(self) -> list[ChildStatus]:
        latest = self._latest_events()
        return [ChildStatus(name, None if proc is None else proc.pid, self._restarts[name],
                            latest.get(name)) for name, proc in list(self._procs.items())]

    def _latest_events(self) -> dict[str, RestartEvent]:
        return {e.name: e for e in list(self.events)}

    def _spawn(self, child: Child) -> None:
        tracker = self._trackers[child.name]
        tracker.started(self._clock_ms())
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with child.log_path.open("ab") as out:
                proc = subprocess.Popen(child.argv, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, cwd=child.cwd,
                                        env={**os.environ, **child.env},
                                        start_new_session=True)
        except OSError as exc:
            log.error("child_spawn_failed", child=child.name, argv=list(child.argv),
                      error=str(exc))
            self._record(tracker.exited(SPAWN_FAILED_EXIT_CODE, self._clock_ms()))
            return
        self._procs[child.name] = proc
        log.info("child_started", child=child.name, pid=proc.pid, attempt=tracker.attempt,
                 log_path=str(child.log_path))

    def _record(self, event: RestartEvent) -> RestartEvent:
        self._restarts[event.name] += 1
        self.events.append(event)
        log.warning("child_exited", child=event.name, exit_code=event.exit_code,
                    signal=event.signal, uptime_ms=event.uptime_ms, attempt=event.attempt,
                    next_delay_ms=event.next_delay_ms, restarting=event.restarting,
                    message=event.describe())
        if self._on_event is not None:
            self._on_event(event)
        return event


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's whole process group (it leads one: ``start_new_session``)."""
    # It may have exited (and its group with it) since we looked.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
