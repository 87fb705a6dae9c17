"""The ``trailpipe`` command: the composition root.

Config is built once here (defaults < ``--config`` < ``TRAILPIPE_*`` env < flags) and handed down.
Exit codes: 0 success, 1 runtime failure, 2 bad config or usage.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from pipeline.cli.common import (
    BootstrapOpt,
    ConfigOpt,
    LakeOpt,
    S3Opt,
    build_config,
    resolve_bootstrap,
)
from pipeline.config import Config

app = typer.Typer(
    help="trailpipe: self-hosted CloudTrail on Kafka. Audit events as Avro on Kafka, rules and "
    "alerts, and a Parquet lake on S3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Create and check the documented topics.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(config_app, name="config")


def installed_version() -> str:
    """The installed distribution's version (its metadata, so a wheel and an editable install
    both answer); ``"unknown"`` when the code runs without being installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trailpipe")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"trailpipe {installed_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print the installed version and exit.")] = False,
) -> None:
    """The options of ``trailpipe`` itself (the help text is the Typer's ``help``)."""


def admin_client(cfg: Config, bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    from pipeline.kafka import base_client_config

    return AdminClient(base_client_config(cfg.kafka, bootstrap))


@topics_app.command("create")
def topics_create(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    check: Annotated[bool, typer.Option(help="Exit 1 when a topic drifts from config.")] = False,
) -> None:
    """Create the documented topics (idempotent) and report drift of existing ones."""
    from pipeline.topics import ensure_topics, topic_specs

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap})
    results = ensure_topics(admin_client(cfg, resolve_bootstrap(cfg)), topic_specs(cfg.topics))
    for r in results:
        typer.echo(f"{r.status:8} {r.name}")
        for d in r.drift:
            typer.echo(f"         drift: {d}")
    if check and any(r.drift for r in results):
        raise typer.Exit(1)


@config_app.command("show")
def config_show(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
) -> None:
    """Print the effective config as JSON, secrets masked."""
    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint})
    typer.echo(json.dumps(cfg.masked(), indent=2, default=str))


def _mount_subcommands() -> None:
    from pipeline.cli.events import app as events_app
    from pipeline.cli.produce import app as produce_app
    from pipeline.dev.cli import app as dev_app

    app.add_typer(dev_app, name="dev", help="Local Kafka (KRaft) and S3 endpoint for dev/tests.")
    app.add_typer(produce_app, name="produce", help="Publish audit events from a source.")
    app.add_typer(events_app, name="events", help="Convert CloudTrail JSON to Avro and back.")
    app.add_typer(_lake_app(), name="lake", help="The Parquet lake: set-up, query, integrity.")
    from pipeline.cli.consume import app as consume_app
    from pipeline.cli.run import run

    app.add_typer(consume_app, name="consume", help="Run a consumer daemon (archiver, ...).")
    from pipeline.cli.rules import app as rules_app

    app.add_typer(rules_app, name="rules", help="Sigma and native rules: list, lint, test, "
                  "evaluate over files.")
    from pipeline.cli.aggregates import app as aggregates_app
    from pipeline.cli.aggregates import insights_app

    app.add_typer(aggregates_app, name="aggregates", help="Exact per-window API call counts "
                  "and rollups across accounts.")
    app.add_typer(insights_app, name="insights", help="Self-hosted CloudTrail Insights.")
    from pipeline.cli.siem import app as siem_app
    app.add_typer(siem_app, name="siem", help="Subscribe SIEMs: principals, ACLs, configs.")
    app.command("run")(run)
    from pipeline.cli.report import report

    app.command("report")(report)
    from pipeline.cli.replay import app as replay_app
    app.add_typer(replay_app, name="replay", help="Replay audit events from Kafka for forensics.")


def _lake_app() -> typer.Typer:
    from pipeline.cli.lake import register as register_integrity
    from pipeline.cli.lake_admin import register as register_admin
    from pipeline.cli.lake_compact import register as register_compact

    lake_app = typer.Typer(help="The Parquet lake on S3 or a local directory.",
                           no_args_is_help=True)
    register_admin(lake_app)
    register_integrity(lake_app)
    register_compact(lake_app)
    return lake_app


_mount_subcommands()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
