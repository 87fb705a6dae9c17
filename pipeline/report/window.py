"""The report's window: ``[start_ms, end_ms)`` of event time, optionally one account, and the
chart bucket that suits its length."""

from __future__ import annotations

from dataclasses import dataclass

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WINDOW_VIEW = "report_window"
"""The temporary view of the ``cloudtrail`` rows in the window (see :func:`create_view`)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Event time ``[start_ms, end_ms)`` (epoch ms), and the account (recipient account, the
    lake's ``account`` partition) when the report is for one."""

    start_ms: int
    end_ms: int
    account: str | None = None

    def __post_init__(self) -> None:
        if self.start_ms >= self.end_ms:
            raise ValueError("the window's start must be before its end")

    @property
    def bucket_ms(self) -> int:
        """Chart bucket: 5 minutes up to 6 hours, 1 hour up to 3 days, else 1 day, so a chart
        has at most a few hundred points per series."""
        span_ms = self.end_ms - self.start_ms
        if span_ms <= 6 * HOUR_MS:
            return 5 * MINUTE_MS
        return HOUR_MS if span_ms <= 3 * DAY_MS else DAY_MS

    def contains(self, time_ms: int | None, account: str | None) -> bool:
        """Whether a record at ``time_ms`` of ``account`` is in the window."""
        return (time_ms is not None and self.start_ms <= time_ms < self.end_ms
                and (self.account is None or account == self.account))


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def view_sql(window: Window) -> str:
    """``CREATE TEMP VIEW`` of the ``cloudtrail`` rows whose event time is in ``window`` (and
    of its account). Rows without an event time (``_event_time_ms`` null) are left out: the
    report is about when things happened."""
    where = (f"_event_time_ms >= {int(window.start_ms)} AND "
             f"_event_time_ms < {int(window.end_ms)}")
    if window.account is not None:
        where += f" AND account = {sql_literal(window.account)}"
    return (f"CREATE OR REPLACE TEMP VIEW {WINDOW_VIEW} AS "
            f"SELECT * FROM cloudtrail WHERE {where}")
