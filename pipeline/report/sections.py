"""The report's sections: each a chart and the top-N table under it, or the reason it has
no data in the window. Builders take the DuckDB connection with the window's view
(:func:`pipeline.report.window.view_sql`) and the alerts and insights already read."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import plotly.graph_objects as go

from pipeline.aggregates.insights import Insight
from pipeline.report import charts, extras, queries
from pipeline.report.window import Window

NO_DATA = "no data in this window"


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the report. ``figure`` is None when there is nothing to draw; ``note``
    then says why (:data:`NO_DATA`, or what was not given)."""

    key: str
    title: str
    figure: go.Figure | None
    columns: tuple[str, ...] = ()
    rows: Sequence[Mapping[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a section may read. ``alerts`` / ``insights`` are None when their source
    was not given or could not be read; ``*_note`` then says which."""

    con: duckdb.DuckDBPyConnection
    window: Window
    top: int
    alerts: Sequence[Mapping[str, Any]] | None
    insights: Sequence[Insight] | None
    alerts_note: str = ""
    insights_note: str = ""


def _section(key: str, title: str, chart_rows: Sequence[object],
             draw: Callable[[], go.Figure], table: Sequence[Mapping[str, Any]],
             note: str = NO_DATA) -> Section:
    if not chart_rows:
        return Section(key, title, None, note=note)
    columns = tuple(table[0]) if table else ()
    return Section(key, title, draw(), columns, table)


def calls(i: Inputs) -> Section:
    series = queries.calls_over_time(i.con, i.window.bucket_ms)
    return _section("calls", "API calls", series, lambda: charts.calls_over_time(series),
                    queries.calls_by_account_region(i.con, i.top))


def errors(i: Inputs) -> Section:
    series = queries.errors_over_time(i.con, i.window.bucket_ms)
    return _section("errors", "Error rates", series, lambda: charts.error_rate(series),
                    queries.top_error_codes(i.con, i.top))


def principals(i: Inputs) -> Section:
    top = queries.top_principals(i.con, i.top)
    return _section("principals", "Top principals", top,
                    lambda: charts.top_bar(top, "principal", "calls", "Top principals"), top)


def source_ips(i: Inputs) -> Section:
    top = queries.top_source_ips(i.con, i.top)
    return _section("source_ips", "Top source IPs", top,
                    lambda: charts.top_bar(top, "source_ip", "calls", "Top source IPs"), top)


def console_logins(i: Inputs) -> Section:
    series = queries.console_logins_over_time(i.con, i.window.bucket_ms)
    return _section("console_logins", "Console logins", series,
                    lambda: charts.console_logins(series), queries.console_logins(i.con, i.top))


def access_denied(i: Inputs) -> Section:
    top = queries.access_denied(i.con, i.top)
    return _section("access_denied", "AccessDenied by principal", top,
                    lambda: charts.top_bar(top, "principal", "denied",
                                           "AccessDenied by principal"), top)


def role_assumptions(i: Inputs) -> Section:
    edges = queries.role_assumptions(i.con, i.top)
    return _section("role_assumptions", "Role assumptions across accounts", edges,
                    lambda: charts.role_graph(edges), edges)


def alerts(i: Inputs) -> Section:
    if i.alerts is None:
        return Section("alerts", "Alerts", None, note=i.alerts_note)
    kept = extras.alerts_in(i.alerts, i.window)
    series = extras.alerts_over_time(kept, i.window.bucket_ms)
    section = _section("alerts", "Alerts by severity and rule", series,
                       lambda: charts.alerts_over_time(series),
                       extras.alerts_by_rule(kept, i.top))
    return replace(section, note=i.alerts_note) if section.figure is not None else section


INSIGHT_COLUMNS = ("account", "region", "event_source", "event_name", "insight_type",
                   "start", "end", "baseline_average", "insight_average", "top_principal")


def insights(i: Inputs) -> Section:
    if i.insights is None:
        return Section("insights", "Insights", None, note=i.insights_note)
    kept = extras.insights_in(i.insights, i.window)
    table = [{c: _insight_cell(x, c) for c in INSIGHT_COLUMNS} for x in kept[:i.top]]
    series = queries.calls_over_time(i.con, i.window.bucket_ms)
    return _section("insights", "Insights on the timeline", kept,
                    lambda: charts.insights_timeline(kept, series, i.window.end_ms), table)


def _insight_cell(insight: Insight, column: str) -> Any:
    if column in ("start", "end"):
        ms = getattr(insight, f"{column}_ms")
        return "open" if ms is None else charts.utc(ms).isoformat()
    return getattr(insight, column)


BUILDERS: tuple[Callable[[Inputs], Section], ...] = (
    calls, errors, principals, source_ips, console_logins, access_denied, role_assumptions,
    alerts, insights)
"""Every section, in page order."""
