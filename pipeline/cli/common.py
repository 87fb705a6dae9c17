"""Options and helpers shared by every ``trailpipe`` command: config built once at the edge,
bootstrap resolution, error exits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from pipeline.config import Config, ConfigError, load_config
from pipeline.logs import configure_logging

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML config file (layered over the defaults).")
]
BootstrapOpt = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka host:port[,...]; default: the local dev cluster."),
]
LakeOpt = Annotated[str | None, typer.Option("--lake", help="Lake URL: file://PATH or s3://B/P.")]
S3Opt = Annotated[str | None, typer.Option("--s3-endpoint", help="S3 API endpoint URL.")]


def fail(code: int, lines: list[str]) -> NoReturn:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def build_config(config: Path | None, **flags: Any) -> Config:
    """Load the config for one command and configure logging; exit 2 listing every error."""
    try:
        cfg = load_config(config, overrides=flags)
    except ConfigError as exc:
        fail(2, ["trailpipe: invalid configuration:", *(f"  - {e}" for e in exc.errors)])
    configure_logging(cfg.log)
    return cfg


def resolve_bootstrap(cfg: Config) -> str:
    """The configured bootstrap, else the running local dev cluster's; exit 2 when neither."""
    if cfg.kafka.bootstrap:
        return cfg.kafka.bootstrap
    from pipeline.dev import status

    info = status(cfg.dev.state_dir)
    if info is None:
        fail(2, ["trailpipe: no Kafka bootstrap configured and no local dev cluster is running "
                  f"(state dir {cfg.dev.state_dir}).",
                  "  Start one with `trailpipe dev up` (or `make up`), or pass --bootstrap."])
    return str(info.bootstrap)


