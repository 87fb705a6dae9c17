"""/healthz and /readyz: what each judges, and the reachability probes behind /readyz.

Alive (/healthz): the poll loop has turned within ``stall_after_s`` and has not stopped.
Ready (/readyz): alive, partitions assigned, flushes not failing for longer than
``flush_budget_s``, and the latest probes found Kafka's metadata and (for daemons writing the
lake) the lake listable. Probes run on their own thread every ``probe_interval_s`` so a scrape
never waits on a slow endpoint; a check that has not run yet counts as not ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.logs import get_logger
from pipeline.metrics.config import MetricsConfig

if TYPE_CHECKING:  # registry imports this module
    from pipeline.lake.store import ObjectStore
    from pipeline.metrics.registry import LoopState

log = get_logger("pipeline.metrics.readiness")

Probe = Callable[[], None]
"""Returns when the dependency answers; raises (anything) when it does not."""


def liveness_problems(state: LoopState, now_s: float, cfg: MetricsConfig) -> list[str]:
    """Why the process is not alive (empty: alive)."""
    if state.stopped:
        return ["the poll loop has stopped"]
    if state.last_loop_s is None:
        return ["the poll loop has not started"]
    idle_s = now_s - state.last_loop_s
    if idle_s > cfg.stall_after_s:
        return [f"the poll loop has not turned for {idle_s:.0f}s "
                f"(stall_after_s {cfg.stall_after_s:g})"]
    return []


def readiness_problems(state: LoopState, probes: Mapping[str, str | None], now_s: float,
                       cfg: MetricsConfig) -> list[str]:
    """Why the daemon is not ready (empty: ready). ``probes`` maps each check to its last
    error (None: it answered; :data:`NOT_CHECKED` before it ran)."""
    problems = liveness_problems(state, now_s, cfg)
    if state.assigned == 0:
        problems.append("no partitions assigned yet")
    if state.flush_failing_since_s is not None:
        last_good = state.last_good_flush_s
        since_s = now_s - (last_good if last_good is not None else state.flush_failing_since_s)
        if since_s > cfg.flush_budget_s:
            problems.append(f"no successful flush for {since_s:.0f}s (flush_budget_s "
                            f"{cfg.flush_budget_s:g}); last error: {state.flush_error}")
    return problems + probe_problems(probes, state.kafka_error, "consumer")


def probe_problems(probes: Mapping[str, str | None], kafka_error: str | None,
                   client: str) -> list[str]:
    """One line per failed probe; the Kafka one adds ``kafka_error``, the last error the
    daemon's Kafka ``client`` reported (if any)."""
    problems = []
    for name, error in probes.items():
        if error is not None:
            detail = f"; the {client}'s last error: {kafka_error}" \
                if name == "kafka" and kafka_error else ""
            problems.append(f"{name} not reachable: {error}{detail}")
    return problems


NOT_CHECKED = "not checked yet"


class Prober:
    """Runs ``checks`` (name → probe) every ``interval_s`` on a daemon thread until
    :meth:`close`. :meth:`results` maps each check to its last error, None once it answered,
    or :data:`NOT_CHECKED` before it first ran (not ready)."""

    def __init__(self, checks: Mapping[str, Probe], interval_s: float) -> None:
        self._checks, self._interval_s = dict(checks), interval_s
        self._results: dict[str, str | None] = dict.fromkeys(self._checks, NOT_CHECKED)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trailpipe-probes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def results(self) -> dict[str, str | None]:
        return dict(self._results)

    def run_once(self) -> None:
        """Run every check now (the thread's body; tests call it directly)."""
        for name, probe in self._checks.items():
            try:
                probe()
            except Exception as exc:  # any failure means not reachable; the reason is shown
                if self._results.get(name) in (None, NOT_CHECKED):
                    log.warning("probe_failed", check=name, error=str(exc))
                self._results[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            else:
                self._results[name] = None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval_s + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._interval_s)


def kafka_probe(kafka_base: Mapping[str, Any], topic: str, timeout_s: float) -> Probe:
    """Kafka describes ``topic`` (one admin client, made on first use). DescribeTopics,
    not a metadata request for the topic, which a broker with ``auto.create.topics.enable``
    would answer by creating it."""
    admin: list[Any] = []

    def probe() -> None:
        from confluent_kafka import TopicCollection
        from confluent_kafka.admin import AdminClient

        if not admin:
            admin.append(AdminClient(dict(kafka_base)))
        futures = admin[0].describe_topics(TopicCollection([topic]),
                                           request_timeout=timeout_s)
        try:
            futures[topic].result(timeout=timeout_s + 1)
        except Exception as exc:  # KafkaException (unknown topic, timeout) or a future timeout
            raise LookupError(f"no metadata for topic {topic} ({exc})") from exc

    return probe


def lake_probe(store: ObjectStore) -> Probe:
    """The lake answers a listing (one page of a prefix nothing is written under)."""
    def probe() -> None:
        next(iter(store.list("_trailpipe_probe/")), None)

    return probe
