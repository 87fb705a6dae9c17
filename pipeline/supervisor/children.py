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

from pipeline.lake.digest.config import DigestConfig
from pipeline.lake.keys import generate_keypair
from pipeline.supervisor.config import RunConfig
from pipeline.supervisor.process import Child

GENERATOR = "generator"
METRICS_PORT_ENV = "TRAILPIPE_METRICS__PORT"
RUN_LOG_DIR = Path("var/run-logs")
"""Where each child's stdout and stderr go (``<name>.log``), relative to the working directory."""
DEMO_KEY = Path("var/run-keys/digest-demo.key")
"""The digester's signing key in demo mode when ``[digest] private_key`` is not set (made once,
public half beside it as ``.pub``)."""
DEMO_DIGEST_PERIOD_MS = 60_000
DEMO_DIGEST_GRACE_MS = 5_000
DEMO_DIGEST_SETTLE_MS = 5_000


class RunSetupError(ValueError):
    """A daemon of ``[run] daemons`` cannot start with this config (the message says the fix)."""


def digester_env(digest: DigestConfig, *, demo: bool, key_path: Path = DEMO_KEY
                 ) -> dict[str, str]:
    """The digester child's settings besides the config file. With ``[digest] private_key``:
    none. Without one, in demo mode: the demo key (made at ``key_path`` on first use) and, unless
    configured, 1-minute periods closed after 5 s and a 5 s start-up settle, so a short run
    writes digests. Without one
    outside demo mode: RunSetupError (a production digester must sign with a key you keep)."""
    if digest.private_key is not None:
        return {}
    if not demo:
        raise RunSetupError(
            "[run] daemons lists the digester but [digest] private_key is not set: make a key "
            "with `trailpipe lake keygen --out PATH` and set [digest] private_key = PATH, or "
            "drop the digester from [run] daemons")
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        generate_keypair(key_path)
    env = {"TRAILPIPE_DIGEST__PRIVATE_KEY": str(key_path)}
    if "period_ms" not in digest.model_fields_set:
        env["TRAILPIPE_DIGEST__PERIOD_MS"] = str(DEMO_DIGEST_PERIOD_MS)
    if "close_grace_ms" not in digest.model_fields_set:
        env["TRAILPIPE_DIGEST__CLOSE_GRACE_MS"] = str(DEMO_DIGEST_GRACE_MS)
    if "startup_settle_ms" not in digest.model_fields_set:
        env["TRAILPIPE_DIGEST__STARTUP_SETTLE_MS"] = str(DEMO_DIGEST_SETTLE_MS)
    return env


def cli_argv(*args: str, config_path: Path | None = None) -> tuple[str, ...]:
    """``trailpipe ARGS`` run with this interpreter (the console script may not be on PATH)."""
    config = ("--config", str(config_path)) if config_path is not None else ()
    return (sys.executable, "-m", "pipeline.cli.app", *args, *config)


def run_children(cfg: RunConfig, *, log_dir: Path = RUN_LOG_DIR, config_path: Path | None = None,
                 env: Mapping[str, str] | None = None, metrics_port_base: int | None = None,
                 generator: bool | None = None,
                 env_of: Mapping[str, Mapping[str, str]] | None = None) -> list[Child]:
    """The children of one ``trailpipe run``: the daemons of ``cfg.daemons`` then, when
    ``generator`` (default ``cfg.generator``) is true, the generator. Logs go to
    ``log_dir/<name>.log``. Each child gets ``env`` plus ``env_of[name]`` when given."""
    with_generator = cfg.generator if generator is None else generator
    commands = {name: ("consume", name) for name in cfg.daemons}
    if with_generator:
        commands[GENERATOR] = ("produce", "generator")
    children = []
    for i, (name, args) in enumerate(commands.items()):
        child_env = {**(env or {}), **(env_of or {}).get(name, {})}
        if metrics_port_base is not None:
            child_env[METRICS_PORT_ENV] = str(metrics_port_base + i)
        children.append(Child(name, cli_argv(*args, config_path=config_path),
                              log_dir / f"{name}.log", child_env))
    return children
