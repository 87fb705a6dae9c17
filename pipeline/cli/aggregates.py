"""``trailpipe aggregates show`` and ``trailpipe insights list``: the aggregator's outputs, read.

``aggregates show`` reads the ``Aggregate`` rows of the compacted topic (latest per key, a
snapshot up to the end offsets at start) or of the lake, and prints the exact rollup per window
that :mod:`pipeline.aggregates.merge` documents. ``insights list`` reads the insights topic and
pairs Start/End events by ``sharedEventID``. Times (``--from``, ``--to``) are ISO 8601 (UTC
unless an offset is given) or epoch milliseconds; windows and insights overlapping
``[from, to)`` are shown. Formats: ``table`` (times as ISO), ``json`` (one object per line) and
``csv`` (times as epoch ms).

Exit codes: 0 success (also when nothing matched), 1 the topic or lake cannot be read, 2 bad
arguments or config.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.common import (
    BootstrapOpt,
    ConfigOpt,
    LakeOpt,
    S3Opt,
    build_config,
    fail,
    resolve_bootstrap,
)
from pipeline.config import Config

if TYPE_CHECKING:
    import pyarrow as pa

app = typer.Typer(help="Per-window API call counts across accounts, from the aggregator.",
                  no_args_is_help=True)
insights_app = typer.Typer(help="Self-hosted CloudTrail Insights: rate and error-rate "
                           "anomalies.", no_args_is_help=True)

FORMATS = ("table", "json", "csv")
PIPED_WIDTH = 240
FromOpt = Annotated[str | None, typer.Option(
    "--from", help="ISO 8601 time (UTC unless an offset is given) or epoch ms; inclusive.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="As --from; exclusive.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, json (lines) or csv.")]


def parse_time_ms(value: str | None, flag: str) -> int | None:
    """Epoch ms of ``value`` (digits: epoch ms; else ISO 8601, naive = UTC); exit 2 when it
    is neither."""
    from pipeline.lake.digest.model import parse_iso_ms

    if value is None:
        return None
    text = value.strip()
    try:
        return int(text) if text.lstrip("-").isdigit() else parse_iso_ms(text)
    except ValueError:
        fail(2, [f"trailpipe: {flag} {value!r} is neither an ISO 8601 time "
                 "(2024-03-10T08:00Z) nor epoch milliseconds"])


def _span(from_: str | None, to: str | None) -> tuple[int | None, int | None]:
    start_ms, end_ms = parse_time_ms(from_, "--from"), parse_time_ms(to, "--to")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        fail(2, ["trailpipe: --from must be before --to"])
    return start_ms, end_ms


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        fail(2, [f"trailpipe: --format must be one of {', '.join(FORMATS)}, not {fmt!r}"])


def _iso(ms: Any) -> str:
    from pipeline.lake.digest.model import iso_ms

    return iso_ms(ms) if isinstance(ms, int) else "open"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> None:
    """Print ``rows`` (dicts with at least ``columns``) as a table, JSON lines or CSV. In a
    table, a column ending in ``_ms`` is shown as an ISO time without the suffix."""
    if fmt == "json":
        for row in rows:
            typer.echo(json.dumps({c: row[c] for c in columns}, ensure_ascii=False))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table

        timed = {c for c in columns if c.endswith("_ms")}
        table = Table(*(c.removesuffix("_ms") if c in timed else c for c in columns))
        for row in rows:
            table.add_row(*(_iso(row[c]) if c in timed else _cell(row[c]) for c in columns))
        console = Console()
        if not console.is_terminal:  # piped: whole rows rather than the 80-column default
            console = Console(width=PIPED_WIDTH)
        console.print(table)


def _base_conf(cfg: Config) -> dict[str, Any]:
    from pipeline.kafka import base_client_config

    return base_client_config(cfg.kafka, resolve_bootstrap(cfg))


@app.command("show")
def show(
    window: Annotated[str, typer.Option("--window", help="1m or 1h.")] = "1h",
    by: Annotated[list[str] | None, typer.Option("--by", help=(
        "account, region, eventName, eventSource, errorCode, identityType, principal, "
        "sourceIP or key (all six dimensions); repeat to group by several (at most one of "
        "principal, sourceIP). Default: eventName."))] = None,
    from_: FromOpt = None, to: ToOpt = None,
    top: Annotated[int | None, typer.Option("--top", help="At most N rows per window, "
                                            "by count (ties by value).")] = None,
    fmt: FormatOpt = "table",
    source: Annotated[str, typer.Option("--source", help="topic (the compacted "
                                        "aggregates topic) or lake.")] = "topic",
    config: ConfigOpt = None, bootstrap: BootstrapOpt = None, lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
) -> None:
    """Exact counts per window across accounts: base records and late corrections merged,
    distinct principals and source IPs (distinct_exact false when a part's value list was
    capped), top N per window."""
    from pipeline.aggregates.merge import check, rollup

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint})
    groups = by or ["eventName"]
    _check_format(fmt)
    if source not in ("topic", "lake"):
        fail(2, [f"trailpipe: --source must be topic or lake, not {source!r}"])
    try:
        check(window_size=window, by=groups, top=top)
    except ValueError as exc:
        fail(2, [f"trailpipe: bad arguments: {exc}"])
    start_ms, end_ms = _span(from_, to)
    rows = _rows(cfg, source, window, start_ms, end_ms)
    result = rollup(rows, window_size=window, by=groups, start_ms=start_ms, end_ms=end_ms,
                    top=top)
    emit(result.to_pylist(), result.column_names, fmt)
    if result.num_rows == 0:
        typer.echo(f"trailpipe: no {window} aggregates matched ({source})", err=True)


def _rows(cfg: Config, source: str, window: str, start_ms: int | None,
          end_ms: int | None) -> pa.Table:
    """The Aggregate rows of ``source``; exit 1 when it cannot be read."""
    from pipeline.aggregates.source import SourceError, lake_rows, topic_rows

    try:
        if source == "lake":
            return lake_rows(cfg.storage.lake, cfg.storage.s3_endpoint, window_size=window,
                             start_ms=start_ms, end_ms=end_ms)
        return topic_rows(_base_conf(cfg), cfg.topics.aggregates)
    except SourceError as exc:
        fail(1, [f"trailpipe: {cfg.topics.aggregates}: {exc}"])
    except OSError as exc:
        fail(1, [f"trailpipe: cannot read the lake {cfg.storage.lake}: {exc}"])


INSIGHT_COLUMNS = ("account", "region", "event_source", "event_name", "insight_type",
                   "start_ms", "end_ms", "baseline_average", "insight_average",
                   "top_principal", "top_user_agent", "top_error_code", "shared_event_id")


@insights_app.command("list")
def list_insights(from_: FromOpt = None, to: ToOpt = None, fmt: FormatOpt = "table",
                  config: ConfigOpt = None, bootstrap: BootstrapOpt = None) -> None:
    """Insights on the insights topic, Start and End paired by sharedEventID: account,
    region, eventSource, eventName, type, start, end (open while it lasts), baseline and
    insight averages, top attributions (highest insight average)."""
    from pipeline.aggregates.insights import pair_insights
    from pipeline.aggregates.source import SourceError, read_to_end
    from pipeline.events.errors import WireFormatError
    from pipeline.events.wire import decode

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap})
    _check_format(fmt)
    start_ms, end_ms = _span(from_, to)
    datums, bad = [], 0
    try:
        for msg in read_to_end(_base_conf(cfg), cfg.topics.insights):
            try:
                datums.append(decode(msg.value() or b""))
            except WireFormatError:
                bad += 1
    except SourceError as exc:
        fail(1, [f"trailpipe: {cfg.topics.insights}: {exc}"])
    rows = [asdict(i) for i in pair_insights(datums) if i.overlaps(start_ms, end_ms)]
    emit(rows, INSIGHT_COLUMNS, fmt)
    if bad:
        typer.echo(f"trailpipe: {bad} undecodable records on {cfg.topics.insights} skipped",
                   err=True)
