"""The health monitor: a daemon thread that runs the lag probe every ``lag_interval_ms`` and the
dead-letter probe every ``dlq_interval_ms`` and queues the Health records they give.

The daemon that hosts it (the aggregator) calls :meth:`HealthMonitor.drain` from its processor's
``tick`` and sends the records in its own Kafka transaction, so the monitor needs no producer.
A probe that fails (the cluster does not answer) logs a warning and runs again at its next
interval; nothing is raised out of the thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pipeline.config import KafkaConfig
from pipeline.health.config import LAG_GROUP_PREFIX, HealthConfig
from pipeline.health.dlq import DlqProbe, DlqRateTracker
from pipeline.health.lag import PROBE_GROUP, LagProbe, LagTracker
from pipeline.health.record import health_record
from pipeline.kafka import base_client_config, consumer_config
from pipeline.logs import get_logger
from pipeline.model import KafkaRecord

log = get_logger("pipeline.health")

MAX_QUEUED = 10_000
"""Health datums kept for :meth:`HealthMonitor.drain`; beyond it the oldest are dropped (a host
that stopped draining must not grow without bound)."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class HealthMonitor:
    """See the module docstring. Either probe may be None (that check does not run)."""

    def __init__(self, config: HealthConfig, *, health_topic: str, lag: LagProbe | None,
                 dlq: DlqProbe | None, component: str = "aggregator",
                 clock: Callable[[], int] = wall_ms) -> None:
        self._config, self._topic, self._clock = config, health_topic, clock
        self._lag, self._dlq = lag, dlq
        self._lag_tracker = LagTracker(threshold_events=config.lag_threshold_events,
                                       threshold_s=config.lag_threshold_s, component=component)
        self._dlq_tracker = DlqRateTracker(threshold_per_min=config.dlq_threshold_per_min,
                                           component=component)
        self._last_dlq_ms: int | None = None
        self._queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUED)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
        self.failures = 0

    def start(self) -> None:
        """Start the thread; the first round of each probe runs at once."""
        self._thread.start()

    def drain(self) -> list[KafkaRecord]:
        """The queued Health records for the health topic, oldest first (thread-safe)."""
        with self._lock:
            datums = list(self._queue)
            self._queue.clear()
        return [health_record(self._topic, d) for d in datums]

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (waiting at most ``timeout_s``) and close the probes' clients. A
        thread stuck in a cluster call past the timeout is left to die with the process."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("health_monitor_not_stopped", timeout_s=timeout_s)
            return
        for probe in (self._lag, self._dlq):
            if probe is not None:
                probe.close()

    def lag_round(self) -> None:
        """Measure lag once and queue what it gives (the thread calls it; tests may too)."""
        if self._lag is not None:
            now_ms = self._clock()
            self._put(self._lag_tracker.observe(self._lag.measure(now_ms), now_ms=now_ms,
                                                report_all=self._config.lag_report_all))

    def dlq_round(self) -> None:
        """Read the new dead letters once and queue what they give. The first round only sets
        the starting point (there is no interval to divide by yet)."""
        if self._dlq is not None:
            counts = self._dlq.look()
            now_ms, last_ms = self._clock(), self._last_dlq_ms
            self._last_dlq_ms = now_ms
            if last_ms is not None and now_ms > last_ms:
                self._put(self._dlq_tracker.observe(counts, elapsed_ms=now_ms - last_ms,
                                                    now_ms=now_ms))

    def _run(self) -> None:
        rounds = [(self.lag_round, self._config.lag_interval_ms / 1000, "lag"),
                  (self.dlq_round, self._config.dlq_interval_ms / 1000, "dlq")]
        due = [time.monotonic()] * len(rounds)
        while not self._stop.is_set():
            for i, (run, interval_s, name) in enumerate(rounds):
                if time.monotonic() >= due[i] and not self._stop.is_set():
                    self._guarded(run, name)
                    due[i] = time.monotonic() + interval_s
            self._stop.wait(max(0.0, min(due) - time.monotonic()))

    def _guarded(self, run: Callable[[], None], name: str) -> None:
        try:
            run()
        except Exception as exc:  # a probe failure must not end the thread; retried next time
            self.failures += 1
            log.warning("health_probe_failed", probe=name, error_type=type(exc).__name__,
                        error=str(exc)[:500])

    def _put(self, datums: list[dict[str, Any]]) -> None:
        with self._lock:
            self._queue.extend(datums)


def build_monitor(kafka: KafkaConfig, bootstrap: str, config: HealthConfig, *,
                  health_topic: str, dlq_topic: str, component: str = "aggregator",
                  clock: Callable[[], int] = wall_ms) -> HealthMonitor:
    """A monitor with both probes, its clients configured from ``[kafka]`` (not started).
    ``clock`` (epoch ms) is a test hook."""
    from confluent_kafka.admin import AdminClient

    base = base_client_config(kafka, bootstrap)
    reader = consumer_config(base, PROBE_GROUP, kafka.extra, read_committed=True)
    lag = LagProbe(AdminClient(base), reader, groups=config.lag_groups,
                   prefix=LAG_GROUP_PREFIX)
    return HealthMonitor(config, health_topic=health_topic, lag=lag,
                         dlq=DlqProbe(reader, dlq_topic), component=component, clock=clock)
