"""``[metrics]``: the HTTP endpoint every daemon can serve (``/metrics``, ``/healthz``,
``/readyz``) and the budgets its health checks use.

``port = 0`` (the default) serves nothing: several daemons on one host (tests, ``make run``)
would otherwise collide on one port. Enable it per process with ``trailpipe consume NAME
--metrics-port 9464`` or ``[metrics] port = 9464``; a supervisor gives each child its own port.
``host`` defaults to loopback; set ``host = "0.0.0.0"`` for a Prometheus on another host.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(default=0, ge=0, le=65535)
    """TCP port of the endpoint; 0: no endpoint (the counters are still kept)."""
    host: str = "127.0.0.1"
    """Address to bind; ``0.0.0.0`` to be scraped from other hosts."""
    flush_budget_s: float = Field(default=300.0, gt=0)
    """/readyz fails when flushes are failing and the last good one is older than this."""
    stall_after_s: float = Field(default=300.0, gt=0)
    """/healthz fails when the poll loop has not turned for this long (as long as Kafka's
    default ``max.poll.interval.ms``: a commit cycle retrying a slow sink is not a hang)."""
    probe_interval_s: float = Field(default=5.0, gt=0)
    """How often the Kafka and lake reachability probes run (in a background thread)."""
    probe_timeout_s: float = Field(default=3.0, gt=0)
    """How long one Kafka metadata probe may take."""
    lag_interval_ms: int = Field(default=10_000, ge=1000)
    """How often librdkafka reports the consumer's statistics (the lag gauge's source)."""
