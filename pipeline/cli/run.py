"""``trailpipe run``: every daemon of ``[run] daemons`` (and the traffic generator, unless
``--no-generator`` or ``[run] generator = false``) as a supervised child process, with a live
dashboard.

It brings up the local cluster (unless a bootstrap is configured), creates the topics, then
starts each child (``trailpipe consume NAME``, ``trailpipe produce generator``) through
:class:`~pipeline.supervisor.process.Supervisor`, which restarts a crashed one with exponential
backoff. Each child serves ``/metrics`` on its own port (from ``[metrics] port``, else 9464,
upward) and logs JSON to ``var/run-logs/<name>.log``. On a terminal the only output is the
dashboard (:mod:`~pipeline.supervisor.dashboard`, scraped every second); the supervisor's own
logs go to ``var/run-logs/supervisor.log``. Without a terminal the logs stay on stderr and the
dashboard's numbers are logged as a ``dashboard`` JSON line every few seconds. In demo mode
(with the generator) the generated traffic arrives in real time, so unless configured the
aggregator runs with :data:`RUN_GRACE_MS` and the archiver with :data:`DEMO_OBJECT_AGE_MS`;
production runs (``--no-generator``) keep every default. Ctrl-C, SIGTERM or ``--duration``
stop every child with SIGTERM (they flush and commit); then a summary and commands to paste
are printed. Exit 0 when every child stopped cleanly and none was given up, else 1.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

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
from pipeline.lake.keys import SigningKeyError
from pipeline.logs import configure_logging, get_logger
from pipeline.supervisor.alert_feed import AlertFeed
from pipeline.supervisor.children import RUN_LOG_DIR, RunSetupError, digester_env, run_children
from pipeline.supervisor.dashboard import (
    LATEST_EVENTS,
    Board,
    View,
    alerts_text,
    free_port_base,
    lake_text,
    render,
    scrape,
)
from pipeline.supervisor.process import Child, Supervisor

log = get_logger("pipeline.cli.run")

RUN_GRACE_MS = 10_000
"""The aggregator's grace in ``trailpipe run`` when none is configured (see the module doc)."""
DEMO_OBJECT_AGE_MS = 10_000
"""The archiver's ``max_age_ms`` in a demo run when none is configured: the generator's trickle
reaches the lake within seconds, not the production minute."""
DEFAULT_METRICS_PORT = 9464
"""The first child's metrics port when ``[metrics] port`` is 0 (Prometheus exporters' range)."""
SCRAPE_EVERY_S = 1.0
LATEST_ALERTS = 5
JSON_EVERY_S = 5.0
SUPERVISOR_LOG = RUN_LOG_DIR / "supervisor.log"

DurationOpt = Annotated[float | None, typer.Option("--duration", help="Stop after this many "
                                                  "seconds.")]
RateOpt = Annotated[float | None, typer.Option(help="Generated events per second.")]
NoGeneratorOpt = Annotated[bool, typer.Option(
    "--no-generator", help="Only the daemons (production on one host): no traffic generator.")]


def run(config: ConfigOpt = None, bootstrap: BootstrapOpt = None, lake: LakeOpt = None,
        s3_endpoint: S3Opt = None, duration_s: DurationOpt = None, rate: RateOpt = None,
        no_generator: NoGeneratorOpt = False) -> None:
    """Every daemon of [run] daemons as a supervised child process (restarted when it crashes),
    plus the traffic generator unless --no-generator, with a live dashboard (events/s in and
    out, lag, dead letters, alerts by severity, lake objects, restarts) until Ctrl-C or
    --duration. Child logs: var/run-logs/<name>.log."""
    from pipeline.cli.app import admin_client
    from pipeline.topics import ensure_topics, topic_specs

    flags = {"kafka.bootstrap": bootstrap, "storage.lake": lake,
             "storage.s3_endpoint": s3_endpoint, "generator.rate_per_s": rate}
    cfg = build_config(config, **flags)
    demo = cfg.run.generator and not no_generator
    env_of = _env_of(cfg, demo=demo)
    started_here = False if cfg.kafka.bootstrap else _dev_up_if_needed(cfg)
    try:
        boot = resolve_bootstrap(cfg)
        terminal = sys.stdout.isatty()
        with _logs_to_file(cfg) if terminal else contextlib.nullcontext():
            for r in ensure_topics(admin_client(cfg, boot), topic_specs(cfg.topics)):
                log.info("topic_ready", topic=r.name, status=r.status, drift=list(r.drift))
            children = run_children(
                cfg.run, config_path=config, env=_child_env(cfg, boot, flags, demo=demo),
                metrics_port_base=_port_base(cfg, no_generator), generator=demo, env_of=env_of)
            started_at = datetime.now(UTC)
            view, code = _supervise(children, cfg, boot, duration_s, terminal)
        where = "".join(f" --{k} {shlex.quote(str(v))}" for k, v in (
            ("config", config), ("lake", lake), ("s3-endpoint", s3_endpoint)) if v)
        _print_summary(view, code, cfg, where, started_at, env_of)
        if started_here:
            typer.echo(f"The local Kafka cluster this run started stops now (its data is kept): "
                       f"`{_trailpipe_command()} dev up` brings it back, for the "
                       "report's alerts and insights.")
    finally:
        if started_here:
            from pipeline.dev import down

            down(cfg.dev.state_dir)
    if code:
        raise typer.Exit(code)


def _env_of(cfg: Config, *, demo: bool) -> dict[str, dict[str, str]]:
    """Settings of single children (the digester's demo key); exits 2 when one cannot start."""
    if "digester" not in cfg.run.daemons:
        return {}
    try:
        return {"digester": digester_env(cfg.digest, demo=demo)}
    except (RunSetupError, SigningKeyError) as exc:
        fail(2, [f"trailpipe: {exc}"])


def _child_env(cfg: Config, bootstrap: str, flags: Mapping[str, object], *,
               demo: bool = False) -> dict[str, str]:
    """What every child gets besides the config file: the resolved bootstrap, this command's
    flags, JSON logs and, in demo mode, the aggregator's grace and the archiver's object age
    where they are not configured (real-time traffic; production keeps its defaults)."""
    env = {"TRAILPIPE_KAFKA__BOOTSTRAP": bootstrap, "TRAILPIPE_LOG__FORMAT": "json"}
    for key, value in flags.items():
        if value is not None and key != "kafka.bootstrap":
            env["TRAILPIPE_" + key.upper().replace(".", "__")] = str(value)
    if demo and "grace_ms" not in cfg.aggregator.model_fields_set:
        env["TRAILPIPE_AGGREGATOR__GRACE_MS"] = str(RUN_GRACE_MS)
    if demo and "max_age_ms" not in cfg.archiver.model_fields_set:
        env["TRAILPIPE_ARCHIVER__MAX_AGE_MS"] = str(DEMO_OBJECT_AGE_MS)
    return env


def _port_base(cfg: Config, no_generator: bool) -> int:
    count = len(cfg.run.daemons) + (0 if no_generator or not cfg.run.generator else 1)
    return free_port_base(cfg.metrics.port or DEFAULT_METRICS_PORT, count, cfg.metrics.host)


def _ports(children: list[Child]) -> dict[str, int]:
    return {c.name: int(c.env["TRAILPIPE_METRICS__PORT"]) for c in children
            if "TRAILPIPE_METRICS__PORT" in c.env}


@contextlib.contextmanager
def _logs_to_file(cfg: Config) -> Iterator[None]:
    """On a terminal: this process's logs (and librdkafka's) go to SUPERVISOR_LOG, so the
    dashboard is all the terminal shows."""
    SUPERVISOR_LOG.parent.mkdir(parents=True, exist_ok=True)
    with SUPERVISOR_LOG.open("a") as out, contextlib.redirect_stderr(out):
        configure_logging(cfg.log)  # re-decides the format for the file (JSON unless set)
        try:
            yield
        finally:
            out.flush()
    configure_logging(cfg.log)


def _supervise(children: list[Child], cfg: Config, bootstrap: str, duration_s: float | None,
               terminal: bool) -> tuple[View, int]:
    """Run the supervisor in this thread (its signal handlers need the main thread) and the
    dashboard in another; returns the last view and the supervisor's exit code."""
    sup = Supervisor(children, cfg.run)
    sup.install_signal_handlers()
    names = [c.name for c in children]
    board = Board(f"bootstrap {bootstrap} | lake {cfg.storage.lake} | {' '.join(names)} | "
                  f"logs {RUN_LOG_DIR}/")
    latest: list[View] = [board.update(sup.status(), {}, [], 0.0)]
    feed = _alert_feed(cfg, bootstrap)
    stop = threading.Event()
    live = Live(render(latest[0]), console=Console(), redirect_stdout=False,
                redirect_stderr=False, refresh_per_second=4) if terminal else None
    watcher = threading.Thread(target=_watch, name="dashboard", daemon=True,
                               args=(sup, board, _ports(children), feed, stop, live, latest))
    with live if live is not None else contextlib.nullcontext():
        watcher.start()
        try:
            code = sup.run(duration_s=duration_s)
        finally:
            stop.set()
            watcher.join(10)
    # the last view, with the exits stop() found (a crash just before the stop is reported)
    final = replace(latest[0], events=tuple(e.describe() for e in sup.events)[-LATEST_EVENTS:])
    log.info("run_stopped", exit_code=code, **final.as_json())
    return final, code


def _alert_feed(cfg: Config, bootstrap: str) -> AlertFeed | None:
    """The newest alerts for the board when the alerter runs (None otherwise)."""
    from pipeline.kafka import base_client_config

    if "alerter" not in cfg.run.daemons:
        return None
    return AlertFeed(base_client_config(cfg.kafka, bootstrap), cfg.topics.alerts, LATEST_ALERTS)


def _watch(sup: Supervisor, board: Board, ports: dict[str, int], feed: AlertFeed | None,
           stop: threading.Event, live: Live | None, latest: list[View]) -> None:
    """Every SCRAPE_EVERY_S: scrape each child and the alert feed, update the board, redraw
    (terminal) or log a ``dashboard`` line every JSON_EVERY_S (otherwise). Closes the feed
    (this thread is its one user)."""
    started_s = time.monotonic()
    logged_s = started_s
    try:
        while not stop.wait(SCRAPE_EVERY_S) and not sup.stopping:  # the last view: still up
            try:
                view = _refresh(sup, board, ports, feed, time.monotonic() - started_s)
            except Exception as exc:  # a failed scrape must not freeze the dashboard
                log.warning("dashboard_refresh_failed", error=str(exc),
                            error_type=type(exc).__name__)
                continue
            latest[0] = view
            if live is not None:
                live.update(render(view))
            elif time.monotonic() - logged_s >= JSON_EVERY_S:
                log.info("dashboard", **view.as_json())
                logged_s = time.monotonic()
    finally:
        if feed is not None:
            feed.close()


def _refresh(sup: Supervisor, board: Board, ports: dict[str, int], feed: AlertFeed | None,
             uptime_s: float) -> View:
    samples = {name: scrape(port) for name, port in ports.items()}
    alerts = [a.describe() for a in feed.poll()] if feed is not None else []
    return board.update(sup.status(), samples, list(sup.events), uptime_s, alerts)


def _print_summary(view: View, code: int, cfg: Config, where: str, started_at: datetime,
                   env_of: Mapping[str, Mapping[str, str]]) -> None:
    """What ran, the totals of the last scrape, and commands a user can paste (``where``: the
    config and lake flags this run was given, repeated in them)."""
    lines = [f"\ntrailpipe run stopped after {view.uptime_s:.0f} s "
             f"({'clean' if code == 0 else 'NOT clean: see the restarts and the logs'}).",
             *(f"  {r.name:<11} {r.state:<10} restarts {r.restarts}" + (
                 f"  consumed {r.total.consumed:,.0f}  outputs {r.total.outputs:,.0f}  dead "
                 f"letters {r.total.dead_letters:,.0f}" if r.has_metrics else "")
               for r in view.rows),
             f"  alerts: {alerts_text(view)}; {lake_text(view)} (as of the last scrape)",
             *(f"  alert: {a}" for a in reversed(view.latest_alerts)),
             *(f"  restart: {e}" for e in view.events),
             f"\nThe lake is at {cfg.storage.lake}. Look at it with:",
             *_commands(_trailpipe_command(), where, started_at, env_of,
                        view.total("outputs", "digester")),
             f"Logs: {RUN_LOG_DIR}/<daemon>.log, {SUPERVISOR_LOG}"]
    typer.echo("\n".join(lines))


def _commands(program: str, flags: str, started_at: datetime,
              env_of: Mapping[str, Mapping[str, str]], digests: float) -> list[str]:
    """Commands to paste: a query, the report of this run's window, and (when the digester
    ran) validating the ``digests`` it wrote, with the demo key's public half when it signed
    them; when it wrote none, why validating now would list every object as unlisted."""
    lines = [f"  {program} lake query{flags} \"SELECT eventsource, eventname, count(*) AS n "
             "FROM cloudtrail GROUP BY ALL ORDER BY n DESC LIMIT 10\"",
             f"  {program} report{flags} --from {started_at:%Y-%m-%dT%H:%M:%SZ} --to "
             f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} --out report.html"]
    if "digester" in env_of:
        key = env_of["digester"].get("TRAILPIPE_DIGEST__PRIVATE_KEY")
        trusted = f" --public-key {key}.pub" if key else ""
        validate = f"{program} lake validate{flags}{trusted}"
        lines.append(f"  {validate}" if digests else "  (no digest closed during this run, so "
                     f"every object is still unlisted: after a longer run, {validate})")
    return lines


def _trailpipe_command() -> str:
    """How a user runs this trailpipe: the console script next to this interpreter (relative
    to the working directory when inside it; it may not be on PATH), else ``python -m``."""
    script = Path(sys.executable).parent / "trailpipe"
    if not script.exists():
        return f"{sys.executable} -m pipeline.cli.app"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


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
