"""``trailpipe consume DAEMON``: the consumer daemons (composition only; daemons live in
``consumers/`` and are imported lazily).

Exit codes: 0 after a clean stop (SIGTERM/SIGINT: flush and commit within
``runner.shutdown_grace_s``), 1 on a fatal Kafka error, 2 on bad config or usage.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

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
from pipeline.lake.config import ArchiverConfig

app = typer.Typer(help="Run a consumer daemon.", no_args_is_help=True)


@app.callback()
def consume() -> None:
    """Run a consumer daemon (a Processor and a Sink on the Runner)."""


def archiver_config(cfg: Config, **overrides: Any) -> ArchiverConfig:
    """The ``[archiver]`` section of ``cfg`` with the non-None ``overrides`` applied; exits 2
    when they do not validate."""
    raw = {**cfg.archiver.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return ArchiverConfig.model_validate(raw)
    except ValueError as exc:
        fail(2, ["trailpipe: invalid configuration:", f"  - archiver: {exc}"])


@app.command("archiver")
def archiver(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
    group: Annotated[str | None, typer.Option(
        "--group", help="Consumer group (default: archiver.group).")] = None,
) -> None:
    """Archive audit.events.v1 into the lake as zstd Parquet (Hive layout by event time),
    exactly once; a notice per object on audit.deliveries.v1, failures on audit.health.v1.
    Runs until SIGTERM/Ctrl-C; prints a JSON summary on exit."""
    from confluent_kafka import KafkaException

    from consumers.archiver.daemon import build_archiver
    from pipeline.runner import FatalRunnerError

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint})
    settings = archiver_config(cfg, group=group)
    try:
        daemon = build_archiver(cfg, settings, resolve_bootstrap(cfg))
    except ValueError as exc:
        fail(2, [f"trailpipe: {exc}"])
    try:
        missing = daemon.notifier.missing_topics()
    except KafkaException as exc:
        fail(1, [f"trailpipe: Kafka is not reachable: {exc}"])
    if missing:
        fail(2, [f"trailpipe: topic {t} does not exist; create the documented topics with "
                 "`trailpipe topics create`" for t in missing])
    daemon.sink.healthcheck(cfg.topics.events)
    daemon.runner.install_signal_handlers()
    try:
        stats = daemon.run()
    except FatalRunnerError as exc:
        fail(1, [f"trailpipe: fatal Kafka error: {exc}"])
    typer.echo(json.dumps({"daemon": "archiver", "lake": daemon.sink.store.url,
                           "consumed": stats.consumed, "dead_lettered": stats.dead_lettered,
                           "rows_written": daemon.sink.rows_written,
                           "objects_written": daemon.sink.objects_written,
                           "commits": stats.commits, "rewinds": stats.rewinds}))
