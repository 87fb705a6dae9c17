"""Build the report from a lake connection (views ``cloudtrail`` and ``aggregates``): create
the window's view, run every section, render the page. Pure apart from the queries on the
connection it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from pipeline.report import aggregated, queries, sections
from pipeline.report.render import page_html
from pipeline.report.sections import Inputs, Section
from pipeline.report.window import view_sql

BUILDERS: tuple[Callable[[Inputs], Section], ...] = (
    sections.BUILDERS[0], aggregated.event_names, *sections.BUILDERS[1:])
"""Every section in page order: the lake's, with the aggregator's after the calls."""


@dataclass(frozen=True, slots=True)
class Report:
    html: str
    sections: tuple[Section, ...]
    calls: int
    """Calls in the window (rows of the lake with an event time in it)."""

    def summary(self) -> dict[str, Any]:
        """What the JSON summary says about the report: calls, and per section whether it
        has a chart and how many table rows, and its note when it has one."""
        return {"calls": self.calls, "charts": sum(s.figure is not None for s in self.sections),
                "sections": {s.key: ({"rows": len(s.rows)} if s.figure is not None else {})
                             | ({"note": s.note} if s.note or s.figure is None else {})
                             for s in self.sections}}


def build_report(inputs: Inputs, subtitle: str = "",
                 progress: Callable[[str], None] = lambda _key: None) -> Report:
    """The report for ``inputs`` (its connection gets the window's temporary view);
    ``progress`` is called with each section's key once it is built."""
    con: duckdb.DuckDBPyConnection = inputs.con
    con.execute(view_sql(inputs.window))
    built = []
    for builder in BUILDERS:
        built.append(builder(inputs))
        progress(built[-1].key)
    page = page_html(inputs.window, built, subtitle)
    return Report(page, tuple(built), queries.total_calls(con))
