"""The HTTP endpoint of one daemon, on its own threads: ``/metrics`` (Prometheus text format,
prometheus_client's WSGI app), ``/healthz`` and ``/readyz`` (200, or 503 with one reason per
line). Started by ``trailpipe consume NAME`` and ``trailpipe produce SOURCE`` when ``[metrics]
port`` / ``--metrics-port`` is set; it serves any :class:`Observed` (a consumer's
:class:`~pipeline.metrics.registry.DaemonMetrics`, a producer's
:class:`~pipeline.metrics.producer.ProducerMetrics`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from pipeline.config import Config
from pipeline.lake.store import open_lake
from pipeline.logs import get_logger
from pipeline.metrics import names
from pipeline.metrics.config import MetricsConfig
from pipeline.metrics.readiness import (
    Probe,
    Prober,
    kafka_probe,
    lake_probe,
)

log = get_logger("pipeline.metrics.server")

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Observed(Protocol):
    """What the endpoint serves: a registry and the daemon's own health judgements (each
    returns the reasons it is not alive / not ready; empty: it is)."""

    @property
    def registry(self) -> CollectorRegistry: ...

    def liveness_problems(self, now_s: float, cfg: MetricsConfig) -> list[str]: ...

    def readiness_problems(self, probes: Mapping[str, str | None], now_s: float,
                           cfg: MetricsConfig) -> list[str]: ...


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hung scrape never holds the process open


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def health_app(metrics: Observed, prober: Prober, cfg: MetricsConfig,
               clock: Callable[[], float] = time.monotonic) -> App:
    """The WSGI app: /metrics, /healthz, /readyz; anything else 404."""
    prometheus = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            served: Iterable[bytes] = prometheus(environ, start_response)
            return served
        if path == "/healthz":
            problems = metrics.liveness_problems(clock(), cfg)
        elif path == "/readyz":
            problems = metrics.readiness_problems(prober.results(), clock(), cfg)
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics, /healthz or /readyz\n"]
        status = "503 Service Unavailable" if problems else "200 OK"
        body = "".join(f"{p}\n" for p in problems) if problems else "ok\n"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [body.encode()]

    return app


class MetricsServer:
    """Serves ``metrics`` on ``host:port`` (port 0: any free port, see :attr:`port`) and runs
    ``probes`` for /readyz. :meth:`start` raises OSError when the port cannot be bound."""

    def __init__(self, metrics: Observed, cfg: MetricsConfig, probes: Mapping[str, Probe],
                 *, host: str, port: int) -> None:
        self._metrics, self._cfg = metrics, cfg
        self._prober = Prober(probes, cfg.probe_interval_s)
        self._host, self._port = host, port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return self._server.server_port if self._server is not None else self._port

    def start(self) -> None:
        app = health_app(self._metrics, self._prober, self._cfg)
        self._server = make_server(self._host, self._port, app, server_class=_Server,
                                   handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="trailpipe-metrics", daemon=True)
        self._thread.start()
        self._prober.start()
        log.info("metrics_serving", url=f"http://{self._host}:{self.port}/metrics")

    def close(self) -> None:
        self._prober.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def daemon_probes(name: str, cfg: Config, kafka_base: Mapping[str, Any], topic: str,
                  metrics_cfg: MetricsConfig) -> dict[str, Probe]:
    """The /readyz probes of daemon ``name``: Kafka's metadata for its first input topic, and
    the lake of ``[storage]`` for daemons that write it."""
    checks = {"kafka": kafka_probe(kafka_base, topic, metrics_cfg.probe_timeout_s)}
    writes_lake = name in names.LAKE_DAEMONS and (name != "aggregator" or cfg.aggregator.lake)
    if writes_lake:
        checks["lake"] = lake_probe(open_lake(cfg.storage))
    return checks
