"""/healthz and /readyz judgements, the probes' thread body, the lag gauge from librdkafka's
statistics, the daemon's own summary counters, and the WSGI app's answers (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import Config, load_config
from pipeline.metrics import names
from pipeline.metrics.config import MetricsConfig
from pipeline.metrics.readiness import (
    NOT_CHECKED,
    Prober,
    liveness_problems,
    readiness_problems,
)
from pipeline.metrics.registry import DaemonMetrics, LoopState
from pipeline.metrics.server import health_app

CFG = MetricsConfig(flush_budget_s=60, stall_after_s=30)
OK_PROBES: dict[str, str | None] = {"kafka": None, "lake": None}


def ready_state(now_s: float = 1000.0) -> LoopState:
    return LoopState(last_loop_s=now_s, assigned=3, last_good_flush_s=now_s)


def test_a_running_assigned_flushing_daemon_is_ready() -> None:
    assert readiness_problems(ready_state(), OK_PROBES, 1000.0, CFG) == []


def test_liveness_needs_a_turning_loop() -> None:
    assert liveness_problems(LoopState(), 0.0, CFG) == ["the poll loop has not started"]
    assert liveness_problems(ready_state(1000.0), 1029.0, CFG) == []
    assert liveness_problems(ready_state(1000.0), 1031.0, CFG) == [
        "the poll loop has not turned for 31s (stall_after_s 30)"]
    stopped = ready_state()
    stopped.stopped = True
    assert liveness_problems(stopped, 1000.0, CFG) == ["the poll loop has stopped"]


def test_no_partitions_is_not_ready() -> None:
    state = ready_state()
    state.assigned = 0
    assert readiness_problems(state, OK_PROBES, 1000.0, CFG) == ["no partitions assigned yet"]


def test_failing_flushes_are_tolerated_within_the_budget_only() -> None:
    state = ready_state(1000.0)
    state.flush_failing_since_s, state.flush_error = 1010.0, "ConnectionError: refused"
    state.last_loop_s = 1059.0
    assert readiness_problems(state, OK_PROBES, 1059.0, CFG) == []
    state.last_loop_s = 1061.0
    assert readiness_problems(state, OK_PROBES, 1061.0, CFG) == [
        "no successful flush for 61s (flush_budget_s 60); last error: ConnectionError: refused"]


def test_an_unreachable_dependency_is_named_with_its_error() -> None:
    state = ready_state()
    state.kafka_error = "KafkaError{code=_ALL_BROKERS_DOWN}"
    problems = readiness_problems(state, {"kafka": "KafkaException: timed out",
                                          "lake": "EndpointConnectionError: refused"}, 1000.0,
                                  CFG)
    assert problems == [
        "kafka not reachable: KafkaException: timed out; the consumer's last error: "
        "KafkaError{code=_ALL_BROKERS_DOWN}",
        "lake not reachable: EndpointConnectionError: refused"]


def test_the_prober_records_each_checks_last_outcome() -> None:
    failing = [True]

    def lake() -> None:
        if failing[0]:
            raise ConnectionError("connect refused\nmore detail")

    prober = Prober({"kafka": lambda: None, "lake": lake}, interval_s=1)
    assert prober.results() == {"kafka": NOT_CHECKED, "lake": NOT_CHECKED}
    state = LoopState(last_loop_s=100.0, assigned=3)
    assert readiness_problems(state, prober.results(), 100.0, CFG) == [  # not ready yet
        f"kafka not reachable: {NOT_CHECKED}", f"lake not reachable: {NOT_CHECKED}"]
    prober.run_once()
    assert prober.results() == {"kafka": None, "lake": "ConnectionError: connect refused"}
    failing[0] = False
    prober.run_once()
    assert prober.results() == {"kafka": None, "lake": None}


def stats_json(lags: dict[str, int]) -> str:
    partitions = {p: {"consumer_lag": lag} for p, lag in lags.items()}
    return json.dumps({"topics": {"events": {"partitions": partitions}}})


def test_the_lag_gauge_follows_librdkafkas_statistics() -> None:
    metrics = DaemonMetrics("archiver", "trailpipe-archiver")
    metrics.kafka_stats(stats_json({"0": 5, "1": -1, "-1": 0, "2": 7}))
    reg = metrics.registry

    def lag(p: str) -> float | None:
        return reg.get_sample_value(names.LAG, {"daemon": "archiver", "group":
                                                "trailpipe-archiver", "topic": "events",
                                                "partition": p})

    assert (lag("0"), lag("1"), lag("-1"), lag("2")) == (5, None, None, 7)
    metrics.kafka_stats(stats_json({"0": 0}))  # partition 2 revoked: its series goes
    assert (lag("0"), lag("2")) == (0, None)


def test_the_daemons_summary_counters_are_exported_by_name() -> None:
    summary: dict[str, Any] = {"lake": "s3://b/p", "objects_written": 2, "rows_written": 40}
    metrics = DaemonMetrics("archiver", "g", summary=lambda: summary)
    reg = metrics.registry
    assert reg.get_sample_value("trailpipe_lake_objects_total", {"daemon": "archiver"}) == 2
    summary["objects_written"] = 3
    assert reg.get_sample_value("trailpipe_lake_objects_total", {"daemon": "archiver"}) == 3
    assert reg.get_sample_value("trailpipe_lake_rows_total", {"daemon": "archiver"}) == 40


def call(app: Any, path: str) -> tuple[str, str]:
    status: list[str] = []
    body: Iterable[bytes] = app({"PATH_INFO": path, "REQUEST_METHOD": "GET",
                                 "QUERY_STRING": ""}, lambda s, _h: status.append(s))
    return status[0], b"".join(body).decode()


class StaticProber(Prober):
    def __init__(self, results: dict[str, str | None]) -> None:
        super().__init__({}, 1)
        self._fixed = results

    def results(self) -> dict[str, str | None]:
        return dict(self._fixed)


def test_the_app_answers_each_endpoint() -> None:
    metrics = DaemonMetrics("archiver", "g")
    metrics.polled([])
    now = metrics.state.last_loop_s or 0.0
    app = health_app(metrics, StaticProber({"kafka": None, "lake": "OSError: refused"}), CFG,
                     clock=lambda: now)
    assert call(app, "/healthz") == ("200 OK", "ok\n")
    assert call(app, "/readyz") == ("503 Service Unavailable",
                                    "no partitions assigned yet\nlake not reachable: "
                                    "OSError: refused\n")
    status, text = call(app, "/metrics")
    assert status.startswith("200")
    families = {f.name for f in text_string_to_metric_families(text)}
    assert "trailpipe_records_processed" in families  # counters: the family drops _total
    assert call(app, "/nope")[0].startswith("404")


class Alerting:
    """A processor with labelled counters (what the alerter would expose)."""

    def __init__(self) -> None:
        self.by_rule: dict[tuple[str, ...], float] = {("high", "root-login"): 2,
                                                      ("low", "odd-region"): 1}

    def labelled_counts(self) -> dict[str, dict[tuple[str, ...], float]]:
        return {"trailpipe_alerts_total": dict(self.by_rule), "not_a_documented_name": {}}


def test_the_builder_exports_a_processors_labelled_counters() -> None:
    from pipeline.config import Config
    from pipeline.daemon import Context, Parts, build_daemon

    processor = Alerting()
    daemon = build_daemon("alerter", lambda _ctx: Parts(
        topics=["events"], group="g", processor=processor, sink=None),  # type: ignore[arg-type]
        Context(Config(), "localhost:1"))
    reg = daemon.runner.metrics.registry

    def alerts(severity: str, rule: str) -> float | None:
        return reg.get_sample_value("trailpipe_alerts_total",
                                    {"daemon": "alerter", "severity": severity, "rule": rule})

    assert (alerts("high", "root-login"), alerts("low", "odd-region")) == (2, 1)
    processor.by_rule[("high", "root-login")] = 3
    assert alerts("high", "root-login") == 3
    assert reg.get_sample_value("not_a_documented_name_total", {"daemon": "alerter"}) is None


def test_the_metrics_section_is_in_the_config_tree_with_the_endpoint_off_by_default() -> None:
    assert Config().metrics == MetricsConfig() and MetricsConfig().port == 0
    assert load_config(env={"TRAILPIPE_METRICS__PORT": "9464"}).metrics.port == 9464


def test_the_lag_is_measured_from_the_position_when_librdkafka_knows_it() -> None:
    # A transactional daemon (alerter, aggregator, mirror) commits through its producer: its
    # consumer reports the committed offset of its assignment (stale) or none at all.
    metrics = DaemonMetrics("alerter", "g")
    partitions = {"0": {"consumer_lag": 9_000, "app_offset": 995, "ls_offset": 1_000},
                  "1": {"consumer_lag": -1, "app_offset": 40, "ls_offset": 40},
                  "2": {"consumer_lag": -1, "app_offset": -1001, "ls_offset": 12}}
    metrics.kafka_stats(json.dumps({"topics": {"events": {"partitions": partitions}}}))

    def lag(p: str) -> float | None:
        return metrics.registry.get_sample_value(names.LAG, {
            "daemon": "alerter", "group": "g", "topic": "events", "partition": p})

    assert (lag("0"), lag("1"), lag("2")) == (5, 0, None)
