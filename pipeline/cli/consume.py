"""``trailpipe consume NAME``: every registered consumer daemon (:data:`pipeline.daemon.DAEMONS`),
each built by the one daemon builder and run the same way.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT: flush and commit within
``runner.shutdown_grace_s``), 1 on a fatal Kafka error or an unreachable cluster, 2 on bad config
or usage (a missing topic, an unusable setting, a lake that denies it, or the cluster refusing
this principal a topic or group while it runs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from pipeline.daemon import DAEMONS

if TYPE_CHECKING:
    from pipeline.daemon import Daemon
    from pipeline.metrics.server import MetricsServer

app = typer.Typer(help="Run a consumer daemon.", no_args_is_help=True)

GroupOpt = Annotated[str | None, typer.Option(
    "--group", help="Consumer group (default: the daemon section's group).")]
IdleOpt = Annotated[float | None, typer.Option(
    "--idle-exit-s", help="Stop after this long without a record (tests, backfills).")]
MetricsPortOpt = Annotated[int | None, typer.Option(
    "--metrics-port", min=0, max=65535,
    help="Serve /metrics, /healthz and /readyz on this port (default: the port of the "
    "metrics config section; 0: off).")]


@app.callback()
def consume() -> None:
    """Run a consumer daemon (its logic and sink on the one poll loop). Each runs until
    SIGTERM/Ctrl-C and prints a JSON summary on exit."""


def run_daemon(name: str, cfg: Config, *, idle_exit_s: float | None = None,
               metrics_port: int | None = None) -> dict[str, Any]:
    """Build, check and run daemon ``name`` in this process until it stops; returns its
    summary. Serves its metrics on ``metrics_port`` (None: ``[metrics] port``; 0: off). Exits
    2 on unusable settings, missing topics or a metrics port it cannot bind, 1 when Kafka is
    unreachable or fails fatally."""
    from confluent_kafka import KafkaException

    from pipeline.daemon import Context, build_registered
    from pipeline.refusals import FatalRunnerError, RefusedError

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
    daemon.runner.install_signal_handlers()  # before /metrics answers: "up" means stoppable
    server = _serve_metrics(daemon, cfg, metrics_port)
    try:
        stats = daemon.run(idle_exit_s=idle_exit_s)
    except RefusedError as exc:  # ACLs, credentials or topics to fix: not worth a restart
        fail(2, [f"trailpipe: {name} refused by the cluster: {exc}"])
    except FatalRunnerError as exc:
        fail(1, [f"trailpipe: {name} stopped on a fatal Kafka error: {exc}"])
    finally:
        if server is not None:
            server.close()
    return daemon.summary(stats)


def _serve_metrics(daemon: Daemon, cfg: Config, port: int | None) -> MetricsServer | None:
    """Start the daemon's metrics endpoint when a port is set (exits 2 if it cannot bind)."""
    from pipeline.metrics.server import MetricsServer, daemon_probes

    mcfg = cfg.metrics
    port = mcfg.port if port is None else port
    if not port:
        return None
    probes = daemon_probes(daemon.name, cfg, daemon.kafka_base, daemon.parts.topics[0], mcfg)
    server = MetricsServer(daemon.runner.metrics, mcfg, probes, host=mcfg.host, port=port)
    try:
        server.start()
    except OSError as exc:
        daemon.close()
        fail(2, [f"trailpipe: cannot serve metrics on {mcfg.host}:{port}: {exc}; set another "
                 "--metrics-port or [metrics] port"])
    return server


def _command(name: str, section: str, help_text: str) -> Callable[..., None]:
    def command(config: ConfigOpt = None, bootstrap: BootstrapOpt = None,
                lake: LakeOpt = None, s3_endpoint: S3Opt = None, group: GroupOpt = None,
                idle_exit_s: IdleOpt = None, metrics_port: MetricsPortOpt = None) -> None:
        cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                      "storage.s3_endpoint": s3_endpoint,
                                      f"{section}.group": group})
        typer.echo(json.dumps(run_daemon(name, cfg, idle_exit_s=idle_exit_s,
                                         metrics_port=metrics_port)))

    command.__doc__ = help_text
    command.__name__ = name
    return command


for _name, _entry in DAEMONS.items():
    app.command(_name)(_command(_name, _entry.section, _entry.help))
