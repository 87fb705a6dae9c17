"""``trailpipe dev``: start, inspect and stop a local Kafka (+ S3) for development and tests.

State lives in ``--state-dir``, else the config's ``dev.state_dir`` (``--config`` file or
``TRAILPIPE_DEV__STATE_DIR``; default ``var/dev``). Errors go to stderr with exit code 1; a bad
config exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import ConfigError, load_config
from pipeline.dev.cluster import down, status, up
from pipeline.dev.model import ClusterInfo, DevClusterError

app = typer.Typer(
    help="Local Apache Kafka (KRaft, from Maven Central jars), moto S3 and a Confluent-compatible "
    "schema registry (Apicurio) for dev and tests.",
    no_args_is_help=True,
)

StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="State directory (default: config dev.state_dir, var/dev)"),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file.")]


def _state_dir(opt: Path | None, config: Path | None = None) -> Path:
    if opt is not None:
        return opt
    try:
        return load_config(config).dev.state_dir
    except ConfigError as exc:
        for line in ["trailpipe: invalid configuration:", *(f"  - {e}" for e in exc.errors)]:
            typer.echo(line, err=True)
        raise typer.Exit(2) from exc


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=1)


def _human(info: ClusterInfo) -> str:
    lines = [f"kafka {info.kafka_version}  bootstrap {info.bootstrap}"]
    for b in info.brokers:
        state = "up" if b.alive else "DOWN"
        lines.append(f"  node {b.node_id}: 127.0.0.1:{b.port}  pid {b.pid}  {state}")
    if info.sasl is not None:
        lines.append(f"  sasl: {info.sasl.security_protocol} {info.sasl.mechanism} "
                     f"user={info.sasl.username} password={info.sasl.password}")
    if info.tls is not None:
        lines += [f"  sasl_ssl: {info.tls.sasl_ssl_bootstrap}  (SCRAM over TLS, the admin above)",
                  f"  ssl: {info.tls.ssl_bootstrap}  (mutual TLS; CN=<name> is User:<name>)",
                  f"  ca: {info.tls.ca_location}",
                  f"  admin client cert: {info.tls.admin_certificate}  "
                  f"key: {info.tls.admin_key}"]
    lines.append(f"  s3: {info.s3_endpoint or '(not started)'}")
    lines.append(f"  schema registry: {info.schema_registry_url or '(not started)'}")
    return "\n".join(lines)


@app.command("up")
def up_cmd(
    brokers: Annotated[int, typer.Option(min=1, help="KRaft nodes (1, or 3 for RF 3)")] = 1,
    sasl: Annotated[bool, typer.Option("--sasl", help="SCRAM-SHA-512 + ACLs, admin user")] = False,
    tls: Annotated[bool, typer.Option(
        "--tls", help="Also SASL_SSL and mutual-TLS (SSL) listeners, with a CA (implies --sasl)")
    ] = False,
    s3: Annotated[bool, typer.Option("--s3", help="Also start a moto S3 server")] = False,
    schema_registry: Annotated[bool, typer.Option(
        "--schema-registry", help="Also start a Confluent-compatible schema registry")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness")] = 90.0,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Start the cluster (or report the one already running) and print how to reach it."""
    try:
        info = up(_state_dir(state_dir, config), brokers=brokers, sasl=sasl, tls=tls, s3=s3,
                  schema_registry=schema_registry, timeout_s=timeout)
    except DevClusterError as exc:
        raise _fail(exc) from exc
    typer.echo(_human(info))


@app.command("down")
def down_cmd(
    purge: Annotated[bool, typer.Option("--purge", help="Also delete data dirs and logs")] = False,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Stop the processes this state dir started."""
    try:
        pids = down(_state_dir(state_dir, config), purge=purge)
    except DevClusterError as exc:
        raise _fail(exc) from exc
    typer.echo(f"stopped pids: {', '.join(map(str, pids))}" if pids else "nothing was running")


@app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show the recorded cluster (exit 1 if none is recorded)."""
    try:
        info = status(_state_dir(state_dir, config))
    except DevClusterError as exc:
        raise _fail(exc) from exc
    if info is None:
        if as_json:
            typer.echo("null")
        raise _fail(DevClusterError(f"no dev cluster in {_state_dir(state_dir, config)}"))
    typer.echo(json.dumps(info.to_json_dict(), indent=2) if as_json else _human(info))


if __name__ == "__main__":
    app()
