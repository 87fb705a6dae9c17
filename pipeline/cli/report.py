"""``trailpipe report``: a self-contained HTML report of a window of the lake.

Sources: the lake's ``cloudtrail`` view (:func:`pipeline.lake.query.connect`) for every
event section, its ``aggregates`` view for the calls per event name; alerts from
``--alerts FILE`` (JSON lines, as ``trailpipe replay --alerts-out`` writes them) or else the
alerts topic, and insights from the insights topic, when a Kafka bootstrap is configured or a
local dev cluster runs (``--no-kafka`` skips both topics; the lake holds neither). A section
without data says so; an empty lake gives a report of such sections.

Output: the page at ``--out``; on a terminal a progress bar; on stderr one JSON summary line
(``{"out", "bytes", "calls", "charts", "sections", ...}``). Exit codes: 0 written, 1 the lake
or the alerts file cannot be read or the page not written, 2 bad arguments or config.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.aggregates import parse_time_ms
from pipeline.cli.common import BootstrapOpt, ConfigOpt, LakeOpt, S3Opt, build_config, fail
from pipeline.config import Config

if TYPE_CHECKING:
    import duckdb

    from pipeline.report.sections import Inputs
    from pipeline.report.window import Window


def report(
    from_: Annotated[str, typer.Option("--from", help="ISO 8601 time (UTC unless an offset "
                                       "is given) or epoch ms; inclusive.")],
    to: Annotated[str, typer.Option("--to", help="As --from; exclusive.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    account: Annotated[str | None, typer.Option("--account", help="Only this account (the "
                                                "lake's account partition).")] = None,
    alerts: Annotated[Path | None, typer.Option("--alerts", help="Alerts as JSON lines "
                                                "(trailpipe replay --alerts-out); default: "
                                                "the alerts topic.")] = None,
    kafka: Annotated[bool, typer.Option(help="Read the alerts and insights topics (when a "
                                        "Kafka bootstrap is configured or a dev cluster "
                                        "runs).")] = True,
    top: Annotated[int, typer.Option("--top", help="Rows of each table.")] = 10,
    config: ConfigOpt = None, bootstrap: BootstrapOpt = None, lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
) -> None:
    """Write one self-contained HTML page (plotly charts, top-N tables; opens offline) for
    event time [--from, --to): calls, errors, principals, source IPs, console logins, access
    denied, role assumptions from the lake; calls per event name from its aggregates; alerts
    from --alerts or the alerts topic; insights from the insights topic. Summary as JSON on
    stderr."""
    from pipeline.report.window import Window

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint})
    start_ms, end_ms = parse_time_ms(from_, "--from"), parse_time_ms(to, "--to")
    if top < 1:
        fail(2, [f"trailpipe: --top must be at least 1, not {top}"])
    if start_ms is None or end_ms is None or start_ms >= end_ms:
        fail(2, ["trailpipe: --from must be before --to"])
    if not out.parent.is_dir():
        fail(2, [f"trailpipe: --out {out}: directory {out.parent} does not exist"])
    window = Window(start_ms, end_ms, account)
    inputs, lake_note = _inputs(cfg, window, top, alerts, kafka)
    _write(inputs, out, lake_note)


def _inputs(cfg: Config, window: Window, top: int, alerts_path: Path | None,
            kafka: bool) -> tuple[Inputs, str]:
    from pipeline.report.extras import AlertsFileError, load_alerts, read_alerts, read_insights
    from pipeline.report.sections import Inputs

    alerts: list[Any] | None
    if alerts_path is not None:
        try:
            alerts, alerts_note = load_alerts(alerts_path), ""
        except AlertsFileError as exc:
            fail(1, [f"trailpipe: --alerts: {exc}"])
    elif kafka:
        alerts, alerts_note = _from_topic(cfg, cfg.topics.alerts, "alerts", read_alerts)
    else:
        alerts, alerts_note = None, "alerts not read (--no-kafka and no --alerts FILE)"
    found, insights_note = _from_topic(cfg, cfg.topics.insights, "insights", read_insights) \
        if kafka else (None, "insights not read (--no-kafka)")
    con, lake_note = _connect(cfg, window)
    return Inputs(con, window, top, alerts, found, alerts_note, insights_note), lake_note


def _connect(cfg: Config, window: Window) -> tuple[duckdb.DuckDBPyConnection, str]:
    """The lake connection over the window's partitions, and what it found for the page."""
    from pipeline.report.lake import open_window

    lake = cfg.storage.lake
    try:
        views = open_window(lake, cfg.storage.s3_endpoint, window)
    except (OSError, ValueError) as exc:
        fail(1, [f"trailpipe: cannot read the lake {lake}: {exc}"])
    aggregates = "" if views.has_aggregates else ", no aggregates yet"
    return views.con, f"lake {lake} ({views.event_objects} event objects{aggregates})"


def _from_topic(cfg: Config, topic: str, what: str,
                read: Callable[[dict[str, Any], str], tuple[list[Any], int]]
                ) -> tuple[list[Any] | None, str]:
    """What ``read`` finds on ``topic``, or None and why not (no Kafka, or unreadable)."""
    from pipeline.aggregates.source import SourceError
    from pipeline.dev import status
    from pipeline.kafka import base_client_config

    bootstrap = cfg.kafka.bootstrap
    if not bootstrap:
        info = status(cfg.dev.state_dir)
        bootstrap = str(info.bootstrap) if info is not None else None
    if not bootstrap:
        return None, f"{what} not read: no Kafka bootstrap configured (--bootstrap)"
    try:
        found, bad = read(base_client_config(cfg.kafka, bootstrap), topic)
    except SourceError as exc:
        return None, f"{what} not read: {topic}: {exc}"
    return found, f"{bad} undecodable records on {topic} skipped" if bad else ""


def _write(inputs: Inputs, out: Path, lake_note: str) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from pipeline.report.build import BUILDERS, build_report

    with Progress(console=Console(stderr=True), disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("report", total=len(BUILDERS))
        result = build_report(inputs, subtitle=f"Source: {lake_note}.",
                              progress=lambda key: bar.update(task, advance=1,
                                                              description=key))
    try:
        out.write_text(result.html, encoding="utf-8")
    except OSError as exc:
        fail(1, [f"trailpipe: cannot write {out}: {exc}"])
    summary = {"out": str(out), "bytes": len(result.html.encode()), **result.summary()}
    typer.echo(json.dumps(summary, sort_keys=True), err=True)
