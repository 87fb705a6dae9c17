"""What every scenario gets (a :class:`BenchContext`) and what it is (a :class:`Scenario`)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.results import ScenarioResult


class BenchError(RuntimeError):
    """A scenario could not produce a trustworthy measurement."""


@dataclass(frozen=True, slots=True)
class BenchContext:
    """The cluster to measure against and the knobs shared by scenarios."""

    bootstrap: str
    records: int
    record_bytes: int
    repo_root: Path
    console: Console


@dataclass(frozen=True, slots=True)
class Scenario:
    """``run`` measures and returns a flat dict of numbers (None for what could not be
    measured); ``summary`` renders that dict as one line."""

    run: Callable[[BenchContext], ScenarioResult]
    summary: Callable[[ScenarioResult], str]
    description: str


def terminate(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM (a daemon commits and prints its summary), SIGKILL after ``grace_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
