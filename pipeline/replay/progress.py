"""A replay at a terminal: the progress bar, and Ctrl-C as a request to stop cleanly.

Progress (:func:`progress_for`): on a TTY only (a pipe or file on stderr gets just the final
JSON summary), a rich bar over the plan's estimated records (offset distances: an upper bound,
so the bar may end short of full) advanced by records scanned, with the ETA, and the records
scanned and matched and the partitions done as text.

Ctrl-C (:func:`stop_on_sigint`): the first SIGINT only sets a flag that
:func:`pipeline.replay.hot.read_plan` checks between batches, so the read ends cleanly and
what was matched so far is written, marked incomplete. The previous handler is put back at
once, so a second Ctrl-C interrupts as usual (KeyboardInterrupt).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from pipeline.replay.hot import HotResult
from pipeline.replay.plan import Plan


class StopFlag:
    """Callable for ``read_plan(stop=...)``: true once :meth:`set` was called."""

    def __init__(self) -> None:
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def __call__(self) -> bool:
        return self.stopped


@contextmanager
def stop_on_sigint() -> Iterator[StopFlag]:
    """While inside, the first SIGINT sets the yielded flag (and restores the previous
    handler, so a second one interrupts). The previous handler is restored on exit. Call from
    the main thread only (``signal.signal`` requires it)."""
    flag = StopFlag()
    # None: a handler not installed from Python; the default is the closest to restore.
    previous = signal.getsignal(signal.SIGINT) or signal.SIG_DFL

    def first_interrupt(_signum: int, _frame: FrameType | None) -> None:
        flag.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, first_interrupt)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class ReplayProgress:
    """The bar of one run; a context manager whose :meth:`update` is ``read_plan``'s
    ``progress`` callback."""

    def __init__(self, plan: Plan, console: Console) -> None:
        self.partitions = len(plan.ranges)
        self.bar = Progress(TextColumn("replay"), BarColumn(), TaskProgressColumn(),
                            TimeRemainingColumn(), TextColumn("{task.fields[detail]}"),
                            console=console)
        self.task = self.bar.add_task("replay", total=max(plan.estimated_records, 1),
                                      detail=self._detail(0, 0, 0))

    def _detail(self, scanned: int, matched: int, done: int) -> str:
        return f"scanned {scanned:,} matched {matched:,} partitions {done}/{self.partitions}"

    def update(self, result: HotResult) -> None:
        scanned = sum(c.scanned for c in result.counts.values())
        matched = sum(c.matched for c in result.counts.values())
        self.bar.update(self.task, completed=scanned,
                        detail=self._detail(scanned, matched, result.partitions_done))

    def __enter__(self) -> ReplayProgress:
        self.bar.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.bar.stop()


class NoProgress:
    """What :func:`progress_for` gives off a terminal: does nothing."""

    def update(self, result: HotResult) -> None:
        pass

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        pass


def progress_for(plan: Plan, stream: TextIO) -> ReplayProgress | NoProgress:
    """A bar drawn on ``stream`` when it is a terminal, else :class:`NoProgress`."""
    if not stream.isatty():
        return NoProgress()
    return ReplayProgress(plan, Console(file=stream))
