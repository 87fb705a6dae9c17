"""The report as one self-contained HTML page.

plotly.js is embedded once, inline, at the top of the page (``include_plotlyjs=True`` on the
first chart, ``False`` on the others), so the file opens with no network. Each chart is one
``<div class="chart" id="chart-<key>">`` holding plotly's div; tables are plain HTML with every
cell escaped (principals, IPs and titles come from the audited systems: untrusted text).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.report.sections import Section
from pipeline.report.window import Window

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
section { margin-bottom: 40px; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f2f2f2; }
p.note { color: #777; font-style: italic; }
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table_html(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain HTML table of ``rows``, every header and cell escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section_html(section: Section, include_plotlyjs: bool) -> str:
    """A section: its title, the chart (plotly.js inline when ``include_plotlyjs``) and the
    table (then its note, if any), or its note."""
    parts = [f'<section id="section-{section.key}"><h2>{html.escape(section.title)}</h2>']
    if section.figure is None:
        parts.append(f'<p class="note">{html.escape(section.note)}</p>')
    else:
        chart = section.figure.to_html(full_html=False, include_plotlyjs=include_plotlyjs,
                                       div_id=f"plot-{section.key}",
                                       config={"displaylogo": False})
        parts.append(f'<div class="chart" id="chart-{section.key}">{chart}</div>')
        if section.rows:
            parts.append(table_html(section.columns, section.rows))
        if section.note:  # something about the source (records skipped)
            parts.append(f'<p class="note">{html.escape(section.note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def page_html(window: Window, sections: Sequence[Section], subtitle: str) -> str:
    """The whole page; plotly.js is inlined with the first section that has a chart."""
    from pipeline.report.charts import utc

    scope = f"account {window.account}" if window.account else "all accounts"
    title = (f"trailpipe report: {utc(window.start_ms).isoformat()} to "
             f"{utc(window.end_ms).isoformat()}, {scope}")
    body, inlined = [], False
    for section in sections:
        body.append(section_html(section, include_plotlyjs=not inlined
                                 and section.figure is not None))
        inlined = inlined or section.figure is not None
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
            + "".join(body) + "</body></html>\n")
