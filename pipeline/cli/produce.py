"""``trailpipe produce SOURCE``: the producer daemons (composition only; sources live in
``producers/`` and are imported lazily).

Every run ends with a JSON summary on stdout. Exit codes: 0 when every record was delivered
or dead-lettered, 1 when Kafka failed to confirm records for good, 2 on bad config or usage
(or a metrics port it cannot bind). With ``--metrics-port`` / ``[metrics] port`` a producer
serves /metrics, /healthz and /readyz (:mod:`pipeline.metrics.producer`) until it exits.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.common import (
    BootstrapOpt,
    ConfigOpt,
    S3Opt,
    build_config,
    fail,
    resolve_bootstrap,
)
from pipeline.cli.consume import MetricsPortOpt
from pipeline.config import Config
from pipeline.logs import get_logger

if TYPE_CHECKING:
    from pipeline.metrics.producer import ProducerMetrics
    from pipeline.metrics.server import MetricsServer
    from producers.publisher import Publisher

app = typer.Typer(help="Publish audit events to Kafka from a source.", no_args_is_help=True)


def make_publisher(cfg: Config, bootstrap: str, source: str,
                   on_kafka_error: Callable[[Any], None] | None = None) -> Publisher:
    """:func:`producers.wiring.publisher_for`; exits 1 when the schema registry refuses."""
    from pipeline.events.confluent import RegistryError
    from producers.wiring import publisher_for

    try:
        return publisher_for(cfg, bootstrap, source, on_kafka_error=on_kafka_error)
    except RegistryError as exc:
        fail(1, [f"trailpipe: schema registry {cfg.schema_registry.url}: {exc}"])


@contextmanager
def producing(cfg: Config, source: str, metrics_port: int | None, *,
              idle_s: float = 0.0) -> Iterator[Publisher]:
    """The Publisher of producer ``source`` with its metrics (daemon label
    ``producer-SOURCE``), served on ``metrics_port`` (None: ``[metrics] port``; 0: off) until
    the block ends. ``idle_s``: how long the source may legitimately not poll (added to
    ``stall_after_s``). Exits 1 when the schema registry refuses, 2 when the port is taken."""
    from pipeline.metrics.producer import ProducerMetrics, daemon_label

    metrics = ProducerMetrics(daemon_label(source), cfg.topics.events)
    bootstrap = resolve_bootstrap(cfg)
    publisher = make_publisher(cfg, bootstrap, source, metrics.kafka_error)
    metrics.watch(publisher.counts)
    server = _serve_metrics(metrics, cfg, bootstrap, metrics_port, idle_s)
    try:
        yield publisher
    finally:
        if server is not None:
            server.close()


def _serve_metrics(metrics: ProducerMetrics, cfg: Config, bootstrap: str, port: int | None,
                   idle_s: float) -> MetricsServer | None:
    """Start the producer's endpoint when a port is set; /readyz probes the events topic."""
    from pipeline.kafka import base_client_config
    from pipeline.metrics.readiness import kafka_probe
    from pipeline.metrics.server import MetricsServer

    mcfg = cfg.metrics.model_copy(update={"stall_after_s": cfg.metrics.stall_after_s + idle_s})
    port = mcfg.port if port is None else port
    if not port:
        return None
    probe = kafka_probe(base_client_config(cfg.kafka, bootstrap), cfg.topics.events,
                        mcfg.probe_timeout_s)
    server = MetricsServer(metrics, mcfg, {"kafka": probe}, host=mcfg.host, port=port)
    try:
        server.start()
    except OSError as exc:
        fail(2, [f"trailpipe: cannot serve metrics on {mcfg.host}:{port}: {exc}; set another "
                 "--metrics-port or [metrics] port"])
    return server


def finish(publisher: Publisher, source: str, started_s: float, **extra: Any) -> None:
    """Flush, print the JSON summary, and exit 1 if any record failed delivery."""
    from producers.publisher import DeliveryFailed

    error = None
    try:
        publisher.flush(120)
    except DeliveryFailed as exc:
        error = str(exc)
    elapsed_s = max(time.monotonic() - started_s, 1e-9)
    stats = publisher.stats
    summary = {"source": source, **extra, **stats.as_dict(),
               "balanced": stats.pending == 0, "elapsed_s": round(elapsed_s, 3),
               "events_per_s": round(stats.produced / elapsed_s, 1),
               "mb_per_s": round(stats.bytes_in / elapsed_s / 1e6, 2)}
    if error:
        summary["error"] = error
    typer.echo(json.dumps(summary))
    if error:
        raise typer.Exit(1)


@app.command("cloudtrail-dir")
def cloudtrail_dir(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (recursive).")],
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    workers: Annotated[int | None, typer.Option(
        help="Processes mapping + encoding records (default 1: in the producing thread).")] = None,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """CloudTrail log files as AWS delivers them (.json.gz with Records), plain JSON, JSON
    lines; bad records are dead-lettered with file and line/index."""
    from producers.dir_source import ingest_paths

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "producer.workers": workers})
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(2, [f"trailpipe: no such file or directory: {m}" for m in missing])
    if cfg.producer.workers > 1 and cfg.schema_registry.url:
        fail(2, ["trailpipe: producer.workers > 1 needs the default Avro encoding "
                 "(schema_registry.url is set)"])
    with producing(cfg, "cloudtrail-dir", metrics_port) as publisher:
        started_s = time.monotonic()
        files = ingest_paths(publisher, paths, max_record_bytes=cfg.producer.max_record_bytes,
                             workers=cfg.producer.workers)
        finish(publisher, "cloudtrail-dir", started_s, files=files)


@app.command("http")
def http(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8088).")] = None,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """The HTTP collector: POST /v1/events (JSON array, {"Records": [...]} or NDJSON) with a
    bearer token; 202 only after Kafka confirmed delivery; GET /healthz. Ctrl-C stops it."""
    import uvicorn

    from producers.http import Collector, build_app

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "http.host": host,
                                  "http.port": port})
    if not cfg.http.tokens and not cfg.http.allow_anonymous:
        fail(2, ["trailpipe: invalid configuration:",
                 "  - http.tokens: required value missing (or set http.allow_anonymous = true)"])
    with producing(cfg, "http", metrics_port) as publisher:
        collector = Collector(publisher, cfg.http, cfg.producer.max_record_bytes)
        server = uvicorn.Server(uvicorn.Config(build_app(collector), host=cfg.http.host,
                                               port=cfg.http.port, log_level="warning",
                                               access_log=False))
        get_logger("producers.http").info("http_listening", host=cfg.http.host,
                                          port=cfg.http.port)
        started_s = time.monotonic()
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.run()  # uvicorn drains requests on SIGINT/SIGTERM, then re-raises the signal
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        finish(publisher, "http", started_s)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@app.command("generator")
def generator(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    rate: Annotated[float | None, typer.Option(help="Events per second (default 200).")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    duration_s: Annotated[float | None,
                          typer.Option("--duration", help="Stop after this many seconds.")] = None,
    seed: Annotated[int | None, typer.Option(help="Same seed, same traffic.")] = None,
    accounts: Annotated[int | None, typer.Option(help="Number of AWS accounts.")] = None,
    regions: Annotated[int | None, typer.Option(help="Regions per account.")] = None,
    scenario: Annotated[list[str] | None, typer.Option(
        help="Attack scenario to inject (repeatable; default: all). 'none' for none.")] = None,
    shape: Annotated[list[str] | None, typer.Option(
        help="Traffic shape over event time (repeatable): api-rate-spike, error-rate-spike, "
             "account-silent, late-delivery; parameters in [generator.shapes].")] = None,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Realistic synthetic CloudTrail traffic across accounts x regions, with injectable attack
    scenarios (logging tampering, root login without MFA, AccessDenied bursts, IAM privilege
    escalation, public bucket policy, KMS key deletion, security group open to the world).
    Runs until --count, --duration or Ctrl-C."""
    from producers.generator.shapes import build_shapes
    from producers.generator.source import make_generator, run_generator

    scenarios = [] if scenario == ["none"] else scenario
    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "generator.rate_per_s": rate,
                                  "generator.seed": seed, "generator.accounts": accounts,
                                  "generator.regions": regions, "generator.scenarios": scenarios,
                                  "generator.shapes.enabled": shape})
    try:
        gen = make_generator(cfg.generator, time.time_ns() // 1_000_000)
    except ValueError as exc:
        fail(2, [f"trailpipe: {exc}"])
    with producing(cfg, "generator", metrics_port) as publisher:
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        started_s = time.monotonic()
        try:
            run_generator(publisher, gen, rate_per_s=cfg.generator.rate_per_s, count=count,
                          duration_s=duration_s, stop=stop,
                          shapes=build_shapes(cfg.generator.shapes, gen))
        except KeyboardInterrupt:
            pass
        except ValueError as exc:  # e.g. --count too small for the requested scenarios
            fail(2, [f"trailpipe: {exc} (or pass --scenario none)"])
        finally:
            signal.signal(signal.SIGTERM, previous)
        finish(publisher, "generator", started_s, seed=cfg.generator.seed)


@app.command("cloudtrail-s3")
def cloudtrail_s3(
    url: Annotated[str, typer.Argument(help="s3://bucket/prefix holding AWSLogs/...")],
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    s3_endpoint: S3Opt = None,
    follow: Annotated[bool, typer.Option(help="Keep listing for new log files.")] = False,
    poll_interval_s: Annotated[float, typer.Option("--poll-interval",
                                                   help="Seconds between listings.")] = 30.0,
    checkpoint: Annotated[Path, typer.Option(
        help="Durable record of processed objects.")] = Path("var/checkpoints/cloudtrail-s3.db"),
    metrics_port: MetricsPortOpt = None,
) -> None:
    """CloudTrail log files in the AWS layout AWSLogs/[o-org/]<account>/CloudTrail/<region>/
    YYYY/MM/DD/*.json.gz, once or --follow. A checkpoint of processed objects (marked only
    after Kafka confirmed their records) means a restart neither skips nor re-sends a file
    (beyond the few in flight at a crash). Ctrl-C stops after the in-flight files."""
    from pipeline.lake.store import s3_client_for
    from producers.checkpoint import Checkpoint, CheckpointLocked
    from producers.s3_source import ingest_s3, parse_s3_url

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap,
                                  "storage.s3_endpoint": s3_endpoint})
    try:
        parse_s3_url(url)
    except ValueError as exc:
        fail(2, [f"trailpipe: {exc}"])
    stop = threading.Event()
    # between passes of --follow the source sleeps poll_interval_s without polling Kafka
    with producing(cfg, "cloudtrail-s3", metrics_port, idle_s=poll_interval_s) as publisher:
        handlers = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        started_s = time.monotonic()
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        try:
            with Checkpoint(checkpoint) as cp:
                result = ingest_s3(publisher, url,
                                   s3_client=s3_client_for(cfg.storage.s3_endpoint),
                                   checkpoint=cp, max_record_bytes=cfg.producer.max_record_bytes,
                                   follow=follow, poll_interval_s=poll_interval_s, stop=stop)
        except CheckpointLocked as exc:
            fail(2, [f"trailpipe: {exc}"])
        finally:
            for sig, previous in handlers.items():
                signal.signal(sig, previous)
        finish(publisher, "cloudtrail-s3", started_s, **result.as_dict())
    if not result.ok:
        raise typer.Exit(1)
