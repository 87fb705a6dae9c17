"""Progress for long work: a rich progress bar on a TTY, nothing otherwise (the JSON summary
at the end says it all)."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class IngestProgress:
    """Files done of ``total_files``, records and MB/s. A no-op when stderr is not a TTY."""

    def __init__(self, total_files: int | None, label: str) -> None:
        self._enabled = sys.stderr.isatty()
        self._started_s = time.monotonic()
        self.records = 0
        self.bytes = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("files | {task.fields[records]:,} records | {task.fields[mb_s]:.1f} MB/s"),
            TimeElapsedColumn(), console=Console(stderr=True), disable=not self._enabled)
        self._task = self._progress.add_task(label, total=total_files, records=0, mb_s=0.0)

    def __enter__(self) -> IngestProgress:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def advance(self, *, files: int = 0, records: int = 0, nbytes: int = 0) -> None:
        self.records += records
        self.bytes += nbytes
        elapsed_s = max(time.monotonic() - self._started_s, 1e-6)
        self._progress.update(self._task, advance=files, records=self.records,
                              mb_s=self.bytes / elapsed_s / 1e6)
