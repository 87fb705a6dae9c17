"""The supervisor's decisions, without processes or clocks: the restart delay of a crashed
child (exponential backoff, reset once the child was stable) and the event that reports it.

Times are milliseconds on any monotonic clock the caller chooses; nothing here reads one.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from pipeline.supervisor.config import RunConfig

GIVE_UP_EXIT_CODE = 2
"""A daemon exits 2 on bad config or usage (a missing topic, an unusable setting): restarting
cannot fix that, so the supervisor reports it and does not restart (see pipeline.cli.consume)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before the ``attempt``-th consecutive restart: ``base_ms * factor^(attempt-1)``,
    at most ``max_ms``."""

    base_ms: int
    max_ms: int
    factor: float = 2.0

    def delay_ms(self, attempt: int) -> int:
        if attempt < 1:
            raise ValueError(f"attempt counts from 1 (got {attempt})")
        # Capped before the power can overflow a float on a long crash loop.
        if attempt > 64:
            return self.max_ms
        return min(self.max_ms, int(self.base_ms * self.factor ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class RestartEvent:
    """One unexpected exit of a child, as logged and shown on the dashboard.

    ``exit_code`` is set when the child exited, ``signal`` (a name, ``SIGKILL``) when a signal
    ended it. ``attempt`` is the consecutive restart this exit leads to (1 after a stable run);
    ``next_delay_ms`` is None when the child is not restarted (it exited with
    :data:`GIVE_UP_EXIT_CODE`)."""

    name: str
    at_ms: int
    uptime_ms: int
    exit_code: int | None
    signal: str | None
    attempt: int
    next_delay_ms: int | None

    @property
    def restarting(self) -> bool:
        return self.next_delay_ms is not None

    def describe(self) -> str:
        """One line for a person: ``archiver killed by SIGKILL after 12.3 s; restart 2 in
        2.0 s``."""
        how = f"killed by {self.signal}" if self.signal else f"exited {self.exit_code}"
        then = (f"restart {self.attempt} in {self.next_delay_ms / 1000:.1f} s"
                if self.next_delay_ms is not None else "not restarted (bad config or usage)")
        return f"{self.name} {how} after {self.uptime_ms / 1000:.1f} s; {then}"


def exit_status(returncode: int) -> tuple[int | None, str | None]:
    """``Popen.returncode`` as (exit code, signal name): negative means killed by a signal."""
    if returncode >= 0:
        return returncode, None
    try:
        return None, signal.Signals(-returncode).name
    except ValueError:
        return None, f"signal {-returncode}"


class RestartTracker:
    """One child's restart state. Call :meth:`started` when it (re)starts and :meth:`exited`
    when it ends unexpectedly; :meth:`due` says when the scheduled restart may happen."""

    def __init__(self, name: str, backoff: Backoff, stable_after_ms: int) -> None:
        self.name = name
        self._backoff = backoff
        self._stable_after_ms = stable_after_ms
        self._attempt = 0
        self._started_ms: int | None = None
        self._restart_at_ms: int | None = None

    @property
    def attempt(self) -> int:
        """Consecutive restarts so far (0 after a stable run or none)."""
        return self._attempt

    def started(self, now_ms: int) -> None:
        self._started_ms = now_ms
        self._restart_at_ms = None

    def exited(self, returncode: int, now_ms: int) -> RestartEvent:
        """Record an unexpected exit and schedule the restart (none after exit code 2)."""
        if self._started_ms is None:
            raise RuntimeError(f"{self.name} exited but was never started")
        uptime_ms = now_ms - self._started_ms
        if uptime_ms >= self._stable_after_ms:
            self._attempt = 0  # it ran long enough to count as healthy: back to the base delay
        self._attempt += 1
        self._started_ms = None
        code, sig = exit_status(returncode)
        delay_ms = None if code == GIVE_UP_EXIT_CODE else self._backoff.delay_ms(self._attempt)
        self._restart_at_ms = None if delay_ms is None else now_ms + delay_ms
        return RestartEvent(self.name, now_ms, uptime_ms, code, sig, self._attempt, delay_ms)

    def due(self, now_ms: int) -> bool:
        """True when a restart is scheduled and its delay has passed."""
        return self._restart_at_ms is not None and now_ms >= self._restart_at_ms


def tracker_for(name: str, cfg: RunConfig) -> RestartTracker:
    """A child's tracker with the ``[run]`` backoff settings."""
    return RestartTracker(name, Backoff(cfg.restart_backoff_ms, cfg.restart_backoff_max_ms),
                          cfg.stable_after_ms)
