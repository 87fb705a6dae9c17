"""``trailpipe lake init|status|query``: bucket set-up from config, and SQL over the lake.
Registered onto the ``lake`` command group by :func:`register`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer

from pipeline.cli.common import ConfigOpt, LakeOpt, S3Opt, build_config, fail
from pipeline.config import Config

FormatOpt = Annotated[str, typer.Option("--format", help="table, csv or json (lines).")]


def _bucket(cfg: Config) -> tuple[Any, str, str]:
    from pipeline.lake.store import s3_client_for

    url = urlparse(cfg.storage.lake)
    if url.scheme != "s3":
        fail(2, [f"trailpipe: {cfg.storage.lake} is not an S3 lake; bucket settings apply to "
                 "s3://BUCKET/PREFIX lakes only"])
    return s3_client_for(cfg.storage.s3_endpoint), url.netloc, url.path.strip("/")


@contextmanager
def _denied(bucket: str) -> Iterator[None]:
    """Exit 2 with the reason when the bucket refuses this client (a traceback otherwise)."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in ("403", "AccessDenied", "Forbidden"):
            raise
        fail(2, [f"trailpipe: the bucket {bucket} denies this client ({code} on "
                 f"{exc.operation_name}): check the credentials; a TLS-only policy applied "
                 "over plain HTTP denies every request (set `[lake] deny_insecure_transport = "
                 "false` and run `trailpipe lake init` again, as the bucket owner)"])


def lake_init(config: ConfigOpt = None, lake: LakeOpt = None, s3_endpoint: S3Opt = None) -> None:
    """Create the bucket if needed and apply from config: default encryption, a policy
    denying non-TLS access and unencrypted puts, the public access block, versioning and
    Object Lock when configured, and lifecycle tiers per prefix. Idempotent."""
    from pipeline.lake.admin import current_policy, init_bucket, restore_policy
    from pipeline.lake.policy import transport_problems

    cfg = build_config(config, **{"storage.lake": lake, "storage.s3_endpoint": s3_endpoint})
    problems = transport_problems(cfg.lake, cfg.storage.s3_endpoint)
    if problems:
        fail(2, ["trailpipe: lake init refused (nothing applied):",
                 *(f"  - {p}" for p in problems)])
    client, bucket, prefix = _bucket(cfg)
    with _denied(bucket):
        before = current_policy(client, bucket)
        done = init_bucket(client, bucket, prefix, cfg.lake, cfg.storage)
        policy_changed = "bucket_policy applied" in done
        _probe_or_fail(cfg, lambda: restore_policy(client, bucket, before) if policy_changed
                       else None)
    typer.echo("\n".join(done) if done else "nothing to do: the bucket matches the config")


def _probe_or_fail(cfg: Config, roll_back: Callable[[], None]) -> None:
    """Write as the daemons do (a probe put under ``_probe/``); when the bucket denies it,
    ``roll_back`` (put back the policy init replaced) and exit 2: a bucket no daemon can write
    to would be a silent lock-out for all of them."""
    from pipeline.lake.store import open_lake
    from pipeline.startup import DestinationRefused, probe_lake_writes

    try:
        probe_lake_writes(open_lake(cfg.storage), "lake-init")
    except DestinationRefused as exc:
        roll_back()
        fail(2, [f"trailpipe: lake init: {exc}",
                 "trailpipe: lake init: a bucket policy it applied is rolled back to the "
                 "previous one; the other settings it applied stay"])


def lake_status(config: ConfigOpt = None, lake: LakeOpt = None, s3_endpoint: S3Opt = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the bucket has against what config wants; exit 1 when anything differs."""
    from pipeline.lake.admin import bucket_status

    cfg = build_config(config, **{"storage.lake": lake, "storage.s3_endpoint": s3_endpoint})
    client, bucket, prefix = _bucket(cfg)
    with _denied(bucket):
        checks = bucket_status(client, bucket, prefix, cfg.lake, cfg.storage)
    if as_json:
        typer.echo(json.dumps([{"aspect": c.aspect, "ok": c.ok, "wanted": c.wanted,
                                "actual": c.actual} for c in checks], indent=2))
    else:
        for c in checks:
            typer.echo(f"{'ok' if c.ok else 'DRIFT':6} {c.aspect}")
            if not c.ok:
                typer.echo(f"       wanted: {c.wanted}\n       actual: {c.actual}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def lake_query(sql: Annotated[str | None, typer.Argument(
                   help="SQL, or - to read it from stdin; the views are `cloudtrail` and "
                   "`aggregates`. SQL starting with a -- comment: use --file, stdin, or put "
                   "-- before it.")] = None,
               file: Annotated[Path | None, typer.Option(
                   "--file", "-f", help="Read the SQL from this file (- for stdin).")] = None,
               config: ConfigOpt = None, lake: LakeOpt = None, s3_endpoint: S3Opt = None,
               fmt: FormatOpt = "table") -> None:
    """Run SQL with DuckDB over the lake: view `cloudtrail` (partition columns account,
    region, date, hour, and year, month, day as in AWS's partitioned CloudTrail table;
    published Athena CloudTrail queries run unchanged apart from the table name: Presto
    functions such as json_extract_scalar, from_iso8601_timestamp, date_parse, regexp_like are
    defined) and view `aggregates` (the aggregator's raw rows: window bases, corrections and
    any copies; `trailpipe aggregates show --source lake` merges them exactly)."""
    import duckdb

    from pipeline.lake.query import EmptyLake, run_query

    cfg = build_config(config, **{"storage.lake": lake, "storage.s3_endpoint": s3_endpoint})
    if fmt not in ("table", "csv", "json"):
        fail(2, [f"trailpipe: --format must be table, csv or json, not {fmt!r}"])
    text = _query_text(sql, file)
    try:
        table = run_query(cfg.storage.lake, text, cfg.storage.s3_endpoint)
    except EmptyLake as exc:
        fail(1, [f"trailpipe: {exc}"])
    except duckdb.Error as exc:
        fail(2, [f"trailpipe: query failed: {exc}"])
    _print_table(table, fmt)


def _query_text(sql: str | None, file: Path | None) -> str:
    """The SQL to run: the argument, a file, or stdin (``-`` as either); exits 2 unless
    exactly one source is given and it holds something."""
    if (sql is None) == (file is None):
        fail(2, ["trailpipe: give the SQL as an argument, or --file PATH (- reads stdin)"])
    if sql == "-" or file == Path("-"):
        text = sys.stdin.read()
    elif file is not None:
        try:
            text = file.read_text()
        except OSError as exc:
            fail(2, [f"trailpipe: cannot read {file}: {exc}"])
    else:
        text = str(sql)
    if not text.strip():
        fail(2, ["trailpipe: the SQL is empty"])
    return text


def _print_table(table: Any, fmt: str) -> None:
    rows = table.to_pylist()
    if fmt == "json":
        for row in rows:
            typer.echo(json.dumps(row, default=str))
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=table.column_names)
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table

        out = Table(*table.column_names)
        for row in rows:
            out.add_row(*(str(v) for v in row.values()))
        Console().print(out)


def lake_ddl(config: ConfigOpt = None, lake: LakeOpt = None,
             table: Annotated[str, typer.Option(help="Table name.")] = "cloudtrail") -> None:
    """Print the Athena CREATE EXTERNAL TABLE for this lake's layout and columns."""
    from pipeline.lake.ddl import athena_ddl

    cfg = build_config(config, **{"storage.lake": lake})
    typer.echo(athena_ddl(cfg.storage.lake, table))


def register(app: typer.Typer) -> None:
    """Add init, status, query and ddl to the ``lake`` command group."""
    app.command("init")(lake_init)
    app.command("status")(lake_status)
    app.command("query")(lake_query)
    app.command("ddl")(lake_ddl)
