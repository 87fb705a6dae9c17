"""The children ``trailpipe run`` supervises, from the ``[run]`` section: one
``trailpipe consume NAME`` per daemon, plus ``trailpipe produce generator`` in demo mode.

Each child reads the same config file and gets its settings that differ from it (the resolved
bootstrap, CLI overrides) as ``TRAILPIPE_<SECTION>__<KEY>`` variables in ``env``, and its own
metrics port when ``metrics_port_base`` is given (base, base+1, ... in the order started).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from pipeline.supervisor.config import RunConfig
from pipeline.supervisor.process import Child

GENERATOR = "generator"
METRICS_PORT_ENV = "TRAILPIPE_METRICS__PORT"
RUN_LOG_DIR = Path("var/run-logs")
"""Where each child's stdout and stderr go (``<name>.log``), relative to the working directory."""


def cli_argv(*args: str, config_path: Path | None = None) -> tuple[str, ...]:
    """``trailpipe ARGS`` run with this interpreter (the console script may not be on PATH)."""
    config = ("--config", str(config_path)) if config_path is not None else ()
    return (sys.executable, "-m", "pipeline.cli.app", *args, *config)


def run_children(cfg: RunConfig, *, log_dir: Path = RUN_LOG_DIR, config_path: Path | None = None,
                 env: Mapping[str, str] | None = None, metrics_port_base: int | None = None,
                 generator: bool | None = None) -> list[Child]:
    """The children of one ``trailpipe run``: the daemons of ``cfg.daemons`` then, when
    ``generator`` (default ``cfg.generator``) is true, the generator. Logs go to
    ``log_dir/<name>.log``."""
    with_generator = cfg.generator if generator is None else generator
    commands = {name: ("consume", name) for name in cfg.daemons}
    if with_generator:
        commands[GENERATOR] = ("produce", "generator")
    children = []
    for i, (name, args) in enumerate(commands.items()):
        child_env = dict(env or {})
        if metrics_port_base is not None:
            child_env[METRICS_PORT_ENV] = str(metrics_port_base + i)
        children.append(Child(name, cli_argv(*args, config_path=config_path),
                              log_dir / f"{name}.log", child_env))
    return children
