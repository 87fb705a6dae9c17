"""``trailpipe run``: the main job on embedded defaults, wired from the parts.

It brings up the local cluster (unless a bootstrap is configured), creates the topics, runs the
traffic generator (with its attack scenarios) into ``audit.events.v1``, the archiver into the
lake (``file://var/lake`` by default), the alerter (the default rule pack, alerts to
``audit.alerts.v1``), the notifier (its ``[notifier] routes``), the aggregator (windows,
Insights, health) and the mirror (CloudTrail JSON on ``audit.events.json.v1`` for SIEMs), and
shows a live status line until Ctrl-C or ``--duration``. Its generated
traffic arrives in real time, so unless ``[aggregator] grace_ms`` is configured the aggregator
runs with :data:`RUN_GRACE_MS`, and a minute's top API calls show up seconds after it ends.
On exit it stops each part cleanly (generator flushed, daemons flushed and committed), stops
the cluster it started, and prints how to query the lake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from typing import Annotated

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
from pipeline.daemon import Daemon
from pipeline.logs import get_logger

log = get_logger("pipeline.cli.run")

RUN_GRACE_MS = 10_000
"""The aggregator's grace in ``trailpipe run`` when none is configured (see the module doc)."""
DAEMONS = ("archiver", "alerter", "notifier", "aggregator", "mirror")


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
    """The main job on embedded defaults: local cluster (unless --bootstrap), topics, the
    traffic generator into audit.events.v1, the archiver into the lake (file://var/lake), the
    alerter, the notifier, the aggregator and the JSON mirror for SIEMs, and a live status line
    (events/s, end offsets, dead letters, archived, alerts, the last minute's top API calls,
    records mirrored) until Ctrl-C or --duration."""
    from pipeline.cli.app import admin_client
    from pipeline.status import run_status
    from pipeline.topics import ensure_topics, topic_specs

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint,
                                  "generator.rate_per_s": rate})
    if "grace_ms" not in cfg.aggregator.model_fields_set:
        cfg = cfg.model_copy(update={"aggregator": cfg.aggregator.model_copy(
            update={"grace_ms": RUN_GRACE_MS})})
    log.info("config_loaded", config=cfg.masked())
    started_here = False if cfg.kafka.bootstrap else _dev_up_if_needed(cfg)
    daemons: dict[str, Daemon] = {}
    try:
        boot = resolve_bootstrap(cfg)
        for r in ensure_topics(admin_client(cfg, boot), topic_specs(cfg.topics)):
            log.info("topic_ready", topic=r.name, status=r.status, drift=list(r.drift))
        with ExitStack() as parts:
            for name in DAEMONS:
                daemons[name] = parts.enter_context(_daemon_running(name, cfg, boot))
            parts.enter_context(_generator_running(cfg, boot))
            run_status(cfg, boot, duration_s=duration_s,
                       archiver_group=cfg.archiver.group,
                       extra=lambda: f"{_alerts(daemons['alerter'])} | "
                                     f"{_top_calls(daemons['aggregator'])} | "
                                     f"{_mirrored(daemons['mirror'])}")
        typer.echo(f"\nThe lake is at {cfg.storage.lake}. Query it with, for example:\n"
                   f"  trailpipe lake query \"SELECT eventsource, eventname, count(*) AS n "
                   f"FROM cloudtrail GROUP BY ALL ORDER BY n DESC LIMIT 10\"", err=True)
    finally:
        if started_here:
            from pipeline.dev import down

            down(cfg.dev.state_dir)
            log.info("dev_cluster_stopped", state_dir=str(cfg.dev.state_dir))


@contextmanager
def _generator_running(cfg: Config, bootstrap: str) -> Iterator[None]:
    """Run the generator in a background thread; on exit stop it, flush, print the summary."""
    from pipeline.cli.produce import finish, make_publisher
    from producers.generator.shapes import build_shapes
    from producers.generator.source import make_generator, run_generator

    publisher = make_publisher(cfg, bootstrap, "generator")
    gen = make_generator(cfg.generator, time.time_ns() // 1_000_000)
    stop = threading.Event()
    worker = threading.Thread(target=run_generator, name="generator", daemon=True,
                              args=(publisher, gen),
                              kwargs={"rate_per_s": cfg.generator.rate_per_s, "stop": stop,
                                      "shapes": build_shapes(cfg.generator.shapes, gen)})
    started_s = time.monotonic()
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)
        finish(publisher, "generator", started_s, seed=cfg.generator.seed)


@contextmanager
def _daemon_running(name: str, cfg: Config, bootstrap: str) -> Iterator[Daemon]:
    """Run a registered daemon (its own Runner) in a background thread; on exit ask it to
    stop, which flushes what it holds and commits."""
    from pipeline.daemon import Context, build_registered

    try:
        daemon = build_registered(name, Context(cfg, bootstrap))
    except ValueError as exc:
        fail(2, [f"trailpipe: {name}: {exc}"])
    worker = threading.Thread(target=daemon.run, name=name, daemon=True)
    worker.start()
    try:
        yield daemon
    finally:
        daemon.runner.request_stop()
        worker.join(cfg.runner.shutdown_grace_s + 30)
        log.info("daemon_stopped", daemon=name, **asdict(daemon.runner.stats))


def _alerts(alerter: Daemon) -> str:
    """The status line's alert counts, from the alerter's own counters."""
    summary = alerter.parts.summary()
    return (f"alerts {summary.get('alerts', 0):,} (+{summary.get('updates', 0):,} updates, "
            f"{summary.get('rule_errors', 0):,} rule errors)")


def _mirrored(mirror: Daemon) -> str:
    """The status line's count of records mirrored as CloudTrail JSON (for SIEMs)."""
    return f"json mirror {mirror.parts.summary().get('mirrored', 0):,}"


def _top_calls(aggregator: Daemon, n: int = 3) -> str:
    """The status line's top API calls of the newest complete minute, from the aggregator."""
    top_calls = getattr(aggregator.parts.processor, "top_calls", None)
    minute, top = top_calls(n) if top_calls is not None else (None, [])
    if minute is None:
        return "top calls: waiting for the first minute"
    at = time.strftime("%H:%M", time.gmtime(minute / 1000))
    return f"top calls {at}Z: " + ", ".join(f"{name} {count:,}" for name, count in top)


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
