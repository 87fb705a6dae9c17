"""The report's charts: plotly figures (``plotly.graph_objects``) built from the rows of
:mod:`pipeline.report.queries` and :mod:`pipeline.report.extras`. Times on the x axes are UTC
datetimes of the bucket starts. Each builder takes non-empty rows (the caller says "no data"
instead of drawing an empty chart)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go

from pipeline.aggregates.insights import Insight
from pipeline.report.extras import severity_order

Rows = Sequence[Mapping[str, Any]]
HEIGHT_PX = 420


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    fig.update_layout(title=title, height=HEIGHT_PX, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50}, **kwargs)
    return fig


def _series(rows: Rows, name: Callable[[Mapping[str, Any]], str], value: str
            ) -> dict[str, tuple[list[datetime], list[Any]]]:
    """(x, y) per series name, in row order."""
    series: dict[str, tuple[list[datetime], list[Any]]] = {}
    for row in rows:
        xs, ys = series.setdefault(name(row), ([], []))
        xs.append(utc(row["bucket_ms"]))
        ys.append(row[value])
    return series


def calls_over_time(rows: Rows) -> go.Figure:
    """One line per account/region."""
    fig = go.Figure()
    for name, (xs, ys) in _series(rows, lambda r: f"{r['account']} {r['region']}",
                                  "calls").items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name))
    return _layout(fig, "API calls over time per account and region", yaxis_title="calls")


def error_rate(rows: Rows) -> go.Figure:
    """Errors as bars, the error rate as a line on a second axis."""
    xs = [utc(r["bucket_ms"]) for r in rows]
    fig = go.Figure([
        go.Bar(x=xs, y=[r["errors"] for r in rows], name="errors", yaxis="y"),
        go.Scatter(x=xs, y=[r["error_rate"] for r in rows], name="error rate",
                   mode="lines+markers", yaxis="y2")])
    return _layout(fig, "Errors and error rate", yaxis={"title": "errors"},
                   yaxis2={"title": "error rate", "overlaying": "y", "side": "right",
                           "tickformat": ".0%", "rangemode": "tozero"})


def top_bar(rows: Rows, label: str, value: str, title: str) -> go.Figure:
    """Horizontal bars, the largest on top."""
    ordered = list(reversed(rows))
    fig = go.Figure(go.Bar(x=[r[value] for r in ordered], y=[str(r[label]) for r in ordered],
                           orientation="h"))
    return _layout(fig, title, xaxis_title=value, yaxis={"automargin": True})


def console_logins(rows: Rows) -> go.Figure:
    """Stacked bars of logins per bucket, by MFA used (Yes / No / unknown)."""
    fig = go.Figure()
    for name, (xs, ys) in _series(rows, lambda r: f"MFA {r['mfa']}", "logins").items():
        fig.add_trace(go.Bar(x=xs, y=ys, name=name))
    return _layout(fig, "Console logins with and without MFA", barmode="stack",
                   yaxis_title="logins")


def role_graph(rows: Rows) -> go.Figure:
    """A Sankey of AssumeRole calls: source accounts (left) to target accounts (right). A
    source and a target are separate nodes even for the same account, so a same-account
    assumption is drawn as an edge rather than a loop."""
    sources = sorted({str(r["source_account"]) for r in rows})
    targets = sorted({str(r["target_account"]) for r in rows})
    labels = [f"from {s}" for s in sources] + [f"to {t}" for t in targets]
    index = {("s", s): i for i, s in enumerate(sources)}
    index.update({("t", t): len(sources) + i for i, t in enumerate(targets)})
    link = {"source": [index[("s", str(r["source_account"]))] for r in rows],
            "target": [index[("t", str(r["target_account"]))] for r in rows],
            "value": [r["calls"] for r in rows]}
    fig = go.Figure(go.Sankey(node={"label": labels, "pad": 18}, link=link))
    return _layout(fig, "Role assumptions across accounts (AssumeRole: source → target)")


def alerts_over_time(rows: Rows) -> go.Figure:
    """Stacked bars of alerts per bucket, by severity (most severe first)."""
    fig = go.Figure()
    series = _series(rows, lambda r: str(r["severity"]), "alerts")
    for name in sorted(series, key=severity_order):
        xs, ys = series[name]
        fig.add_trace(go.Bar(x=xs, y=ys, name=name))
    return _layout(fig, "Alerts by severity over time", barmode="stack", yaxis_title="alerts")


def insights_timeline(insights: Sequence[Insight], calls: Rows, end_ms: int) -> go.Figure:
    """Total calls per bucket as a line, each insight as a shaded span over it (an open
    one up to ``end_ms``), labelled with its type and event name."""
    totals: dict[int, int] = {}
    for row in calls:
        totals[row["bucket_ms"]] = totals.get(row["bucket_ms"], 0) + int(row["calls"])
    fig = go.Figure(go.Scatter(x=[utc(b) for b in sorted(totals)],
                               y=[totals[b] for b in sorted(totals)], name="calls",
                               mode="lines"))
    for insight in insights:
        start = insight.start_ms if insight.start_ms is not None else insight.end_ms
        fig.add_vrect(x0=utc(start or end_ms), x1=utc(insight.end_ms or end_ms),
                      fillcolor="orange", opacity=0.25, line_width=0,
                      annotation_text=f"{insight.insight_type} {insight.event_name}",
                      annotation_position="top left")
    return _layout(fig, "Insights on the timeline", yaxis_title="calls")
