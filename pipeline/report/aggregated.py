"""The report's section from the aggregator's rows (the lake's ``aggregates`` view): API calls
per event name per hour, exact across accounts.

The rows are raw parts (a window's base record, its late corrections, copies a replay left);
they are summed as :func:`pipeline.aggregates.merge.rollup` documents (one row per Kafka key,
the latest ``emitted_ms``; parts added). The 1-hour windows that overlap the report's window
are counted whole, so an edge hour may hold calls just outside ``[from, to)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import plotly.graph_objects as go

from pipeline.aggregates.merge import rollup
from pipeline.report import charts
from pipeline.report.sections import NO_DATA, Inputs, Section

WINDOW_SIZE = "1h"
OTHER = "(other)"


def event_names_per_hour(con: duckdb.DuckDBPyConnection, start_ms: int, end_ms: int,
                         account: str | None) -> list[dict[str, Any]]:
    """The merged ``1h`` counts per (window_start_ms, event_name) of the windows overlapping
    ``[start_ms, end_ms)`` (of ``account`` when given)."""
    parts = con.sql(
        "SELECT * FROM aggregates WHERE window_size = $size AND window_end_ms > $start "
        "AND window_start_ms < $end AND ($account IS NULL OR account = $account)",
        params={"size": WINDOW_SIZE, "start": start_ms, "end": end_ms, "account": account},
    ).to_arrow_table()
    merged = rollup(parts, window_size=WINDOW_SIZE, by=["eventName"], start_ms=start_ms,
                    end_ms=end_ms)
    return [{"bucket_ms": r["window_start_ms"], "event_name": r["event_name"],
             "calls": r["count"]} for r in merged.to_pylist()]


def top_event_names(series: Sequence[Mapping[str, Any]], top: int) -> list[dict[str, Any]]:
    """Event names by calls over the window, the largest first (ties by name)."""
    totals: dict[str, int] = {}
    for row in series:
        totals[row["event_name"]] = totals.get(row["event_name"], 0) + int(row["calls"])
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"event_name": name, "calls": calls} for name, calls in ordered]


def figure(series: Sequence[Mapping[str, Any]], names: set[str]) -> go.Figure:
    """Stacked bars per hour: the top event names, the rest as :data:`OTHER`."""
    folded: dict[tuple[int, str], int] = {}
    for row in series:
        key = (row["bucket_ms"], row["event_name"] if row["event_name"] in names else OTHER)
        folded[key] = folded.get(key, 0) + int(row["calls"])
    fig = go.Figure()
    for name in [*sorted(names), OTHER]:
        points = sorted((b, n) for (b, e), n in folded.items() if e == name)
        if points:
            fig.add_trace(go.Bar(x=[charts.utc(b) for b, _ in points],
                                 y=[n for _, n in points], name=name))
    fig.update_layout(title="API calls per event name per hour (aggregator, exact)",
                      barmode="stack", height=charts.HEIGHT_PX, template="plotly_white",
                      yaxis_title="calls")
    return fig


def event_names(i: Inputs) -> Section:
    """The section: chart and top-N table, or "no data" when the aggregator wrote no rows
    for the window."""
    series = event_names_per_hour(i.con, i.window.start_ms, i.window.end_ms, i.window.account)
    if not series:
        return Section("event_names", "API calls per event name (aggregates)", None,
                       note=NO_DATA)
    table = top_event_names(series, i.top)
    return Section("event_names", "API calls per event name (aggregates)",
                   figure(series, {r["event_name"] for r in table}), ("event_name", "calls"),
                   table)
