"""The ``trailpipe`` command: the composition root.

Config is built once here (defaults < ``--config`` < ``TRAILPIPE_*`` env < flags) and handed down.
Exit codes: 0 success, 1 runtime failure, 2 bad config or usage.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from pipeline.cli_common import (
    BootstrapOpt,
    ConfigOpt,
    LakeOpt,
    S3Opt,
    build_config,
    fail,
    resolve_bootstrap,
)
from pipeline.config import Config
from pipeline.logs import get_logger

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

def _admin(cfg: Config, bootstrap: str) -> Any:
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
    results = ensure_topics(_admin(cfg, resolve_bootstrap(cfg)), topic_specs(cfg.topics))
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


@app.command("run")
def run(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
    duration_s: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Generated events per second.")] = None,
) -> None:
    """The main job on embedded defaults: bring up the local cluster (unless --bootstrap),
    create the topics, run the traffic generator into audit.events.v1 and show a live status
    line (events/s, per-partition end offsets, dead letters) until Ctrl-C or --duration."""
    from pipeline.status import run_status
    from pipeline.topics import ensure_topics, topic_specs

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint,
                                  "generator.rate_per_s": rate})
    log = get_logger("pipeline.cli")
    log.info("config_loaded", config=cfg.masked())
    started_here = False if cfg.kafka.bootstrap else _dev_up_if_needed(cfg)
    try:
        boot = resolve_bootstrap(cfg)
        for r in ensure_topics(_admin(cfg, boot), topic_specs(cfg.topics)):
            log.info("topic_ready", topic=r.name, status=r.status, drift=list(r.drift))
        with _generator_running(cfg, boot):
            run_status(cfg, boot, duration_s=duration_s)
    finally:
        if started_here:
            from pipeline.dev import down

            down(cfg.dev.state_dir)
            log.info("dev_cluster_stopped", state_dir=str(cfg.dev.state_dir))


@contextmanager
def _generator_running(cfg: Config, bootstrap: str) -> Iterator[None]:
    """Run the generator in a background thread; on exit stop it, flush, print the summary."""
    from pipeline.cli_produce import finish, make_publisher
    from producers.generator_source import make_generator, run_generator

    publisher = make_publisher(cfg, bootstrap, "generator")
    gen = make_generator(cfg.generator, time.time_ns() // 1_000_000)
    stop = threading.Event()
    worker = threading.Thread(target=run_generator, name="generator", daemon=True,
                              args=(publisher, gen),
                              kwargs={"rate_per_s": cfg.generator.rate_per_s, "stop": stop})
    started_s = time.monotonic()
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)
        finish(publisher, "generator", started_s, seed=cfg.generator.seed)


def _dev_up_if_needed(cfg: Config) -> bool:
    """Start the local dev cluster when none runs; True when this call started it."""
    from pipeline.dev import DevClusterError, status, up

    if status(cfg.dev.state_dir) is not None:
        return False
    typer.echo("starting the local Kafka cluster (first run resolves jars with Maven)...",
               err=True)
    try:
        up(cfg.dev.state_dir)
    except DevClusterError as exc:
        fail(1, [f"trailpipe: {exc}"])
    return True


def _mount_subcommands() -> None:
    from pipeline.cli_events import app as events_app
    from pipeline.cli_produce import app as produce_app
    from pipeline.dev.cli import app as dev_app

    app.add_typer(dev_app, name="dev", help="Local Kafka (KRaft) and S3 endpoint for dev/tests.")
    app.add_typer(produce_app, name="produce", help="Publish audit events from a source.")
    app.add_typer(events_app, name="events", help="Convert CloudTrail JSON to Avro and back.")
    app.add_typer(_lake_app(), name="lake", help="The Parquet lake: set-up, query, integrity.")


def _lake_app() -> typer.Typer:
    from pipeline.cli_lake import register as register_integrity
    from pipeline.cli_lake_admin import register as register_admin

    lake_app = typer.Typer(help="The Parquet lake on S3 or a local directory.",
                           no_args_is_help=True)
    register_admin(lake_app)
    register_integrity(lake_app)
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
