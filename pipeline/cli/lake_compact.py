"""``trailpipe lake compact``: merge small objects of a date's Hive partitions, drop duplicate
rows, announce the result on the deliveries topic so the digest chain records it.

Mount with ``register(lake_app)``. Exit codes: 0 done, 1 a partition failed (the rest were
compacted; re-run to finish) or the lake/Kafka is unreachable, 2 bad config or usage.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

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
from pipeline.lake.compact.model import CompactConfig

if TYPE_CHECKING:
    from pipeline.lake.compact.model import Summary
    from pipeline.lake.compact.notify import KafkaNotices

def compact_config(cfg: Config) -> CompactConfig:
    """The ``[compact]`` section."""
    return cfg.compact


def _notices(cfg: Config) -> KafkaNotices:
    from pipeline.kafka import base_client_config, producer_config
    from pipeline.lake.compact.notify import KafkaNotices

    base = base_client_config(cfg.kafka, resolve_bootstrap(cfg))
    return KafkaNotices(producer_config(base, cfg.kafka.extra), cfg.topics.deliveries)


def lake_compact(
    date: Annotated[str, typer.Option("--date", help="Event date YYYY-MM-DD (UTC).")],
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Read and plan, write and announce nothing.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Merge the small objects of each Hive partition of a date into objects of about
    compact.target_object_bytes, dropping duplicate rows (same _partition and _offset).
    Announces the new objects and the compaction on the deliveries topic (the digester records
    it), then deletes the replaced objects. Safe to re-run: it finishes interrupted work."""
    from pipeline.lake.compact.run import Compactor
    from pipeline.lake.store import StoreError, open_lake

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint})
    try:
        datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        fail(2, [f"trailpipe: --date {date!r} is not YYYY-MM-DD"])
    if fmt not in ("table", "json"):
        fail(2, [f"trailpipe: --format must be table or json, not {fmt!r}"])
    try:
        store = open_lake(cfg.storage)
    except ValueError as exc:
        fail(2, [f"trailpipe: {exc}"])
    notices = None if dry_run else _notices(cfg)
    try:
        summary = Compactor(store, notices, compact_config(cfg)).run(date, account,
                                                                     dry_run=dry_run)
    except StoreError as exc:
        fail(1, [f"trailpipe: cannot read the lake {cfg.storage.lake}: {exc}"])
    _print_summary(summary, fmt)
    if not summary.ok:
        fail(1, [f"trailpipe: {e}" for e in summary.errors])


def _print_summary(summary: Summary, fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    title = f"lake compact {summary.date}" + (" (dry run)" if summary.dry_run else "")
    table = Table("account", "region", "hour", "status", "objects", "rows", "duplicates",
                  title=title)
    for p in summary.partitions:
        account, region, _date, hour = (s.partition("=")[2] for s in p.partition.split("/")[1:])
        table.add_row(account, region, hour, p.status, f"{p.objects_before} → {p.objects_after}",
                      f"{p.rows_in} → {p.rows_out}", str(p.duplicates_dropped))
    t = summary.totals()
    table.add_section()
    table.add_row("total", "", "", f"{t['partitions_compacted']}/{t['partitions']} compacted",
                  f"{t['objects_before']} → {t['objects_after']}",
                  f"{t['rows_in']} → {t['rows_out']}", str(t["duplicates_dropped"]))
    Console().print(table)


def register(lake_app: typer.Typer) -> None:
    """Add ``compact`` to the ``lake`` command group."""
    lake_app.command("compact")(lake_compact)
