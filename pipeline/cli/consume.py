"""``trailpipe consume NAME``: every registered consumer daemon (:data:`pipeline.daemon.DAEMONS`),
each built by the one daemon builder and run the same way.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT: flush and commit within
``runner.shutdown_grace_s``), 1 on a fatal Kafka error or an unreachable cluster, 2 on bad config
or usage (a missing topic, an unusable setting).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from pipeline.daemon import DAEMONS

app = typer.Typer(help="Run a consumer daemon.", no_args_is_help=True)

GroupOpt = Annotated[str | None, typer.Option(
    "--group", help="Consumer group (default: the daemon section's group).")]
IdleOpt = Annotated[float | None, typer.Option(
    "--idle-exit-s", help="Stop after this long without a record (tests, backfills).")]


@app.callback()
def consume() -> None:
    """Run a consumer daemon (its logic and sink on the one poll loop). Each runs until
    SIGTERM/Ctrl-C and prints a JSON summary on exit."""


def run_daemon(name: str, cfg: Config, *, idle_exit_s: float | None = None) -> dict[str, Any]:
    """Build, check and run daemon ``name`` in this process until it stops; returns its
    summary. Exits 2 on unusable settings or missing topics, 1 when Kafka is unreachable or
    fails fatally."""
    from confluent_kafka import KafkaException

    from pipeline.daemon import Context, build_registered
    from pipeline.runner import FatalRunnerError

    try:
        daemon = build_registered(name, Context(cfg, resolve_bootstrap(cfg)))
    except ValueError as exc:
        fail(2, [f"trailpipe: {name}: {exc}"])
    try:
        problems = daemon.startup_problems()
    except KafkaException as exc:
        daemon.close()
        fail(1, [f"trailpipe: Kafka is not reachable: {exc}"])
    if problems:
        daemon.close()
        fail(2, [f"trailpipe: {p}" for p in problems])
    daemon.healthcheck()
    daemon.runner.install_signal_handlers()
    try:
        stats = daemon.run(idle_exit_s=idle_exit_s)
    except FatalRunnerError as exc:
        fail(1, [f"trailpipe: {name} stopped on a fatal Kafka error: {exc}"])
    return daemon.summary(stats)


def _command(name: str, section: str, help_text: str) -> Callable[..., None]:
    def command(config: ConfigOpt = None, bootstrap: BootstrapOpt = None,
                lake: LakeOpt = None, s3_endpoint: S3Opt = None, group: GroupOpt = None,
                idle_exit_s: IdleOpt = None) -> None:
        cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                      "storage.s3_endpoint": s3_endpoint,
                                      f"{section}.group": group})
        typer.echo(json.dumps(run_daemon(name, cfg, idle_exit_s=idle_exit_s)))

    command.__doc__ = help_text
    command.__name__ = name
    return command


for _name, _entry in DAEMONS.items():
    app.command(_name)(_command(_name, _entry.section, _entry.help))
