"""The dashboard model of ``trailpipe run``: /metrics text → numbers, totals carried across a
child's restart, the JSON line and the rich rendering without a terminal."""

from __future__ import annotations

import io
import json
import socket

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from rich.console import Console

from pipeline.metrics import names
from pipeline.supervisor.dashboard import (
    Board,
    Sample,
    count_text,
    free_port_base,
    parse_metrics,
    render,
)
from pipeline.supervisor.policy import RestartEvent
from pipeline.supervisor.process import ChildStatus


def exposition(daemon: str, *, consumed: dict[int, int], outputs: int = 0, lag: int = 0,
               alerts: dict[str, int] | None = None, new_alerts: int = 0,
               lake_objects: int = 0, lake_rows: int = 0, lake_bytes: int = 0,
               dead: int = 0) -> str:
    """What a daemon's /metrics serves, written by prometheus_client itself."""
    r = CollectorRegistry()
    c = Counter(names.CONSUMED, "", ["daemon", "topic", "partition"], registry=r)
    for partition, n in consumed.items():
        c.labels(daemon, "audit.events.v1", str(partition)).inc(n)
    Counter(names.OUTPUTS, "", ["daemon"], registry=r).labels(daemon).inc(outputs)
    Counter(names.DEAD_LETTERS, "", ["daemon", "reason"], registry=r).labels(
        daemon, "DecodeError").inc(dead)
    Counter(names.KAFKA_ERRORS, "", ["daemon"], registry=r).labels(daemon).inc(0)
    g = Gauge(names.LAG, "", ["daemon", "group", "topic", "partition"], registry=r)
    g.labels(daemon, "g", "audit.events.v1", "0").set(lag)
    g.labels(daemon, "g", "audit.events.v1", "1").set(1)
    a = Counter("trailpipe_alerts_total", "", ["daemon", "severity", "rule"], registry=r)
    for key, n in (alerts or {}).items():
        severity, rule = key.split("/")
        a.labels(daemon, severity, rule).inc(n)
    for name, n in (("trailpipe_alerter_alerts_total", new_alerts),
                    ("trailpipe_lake_objects_total", lake_objects),
                    ("trailpipe_lake_rows_total", lake_rows),
                    ("trailpipe_lake_bytes_total", lake_bytes)):
        if n:
            Counter(name, "", ["daemon"], registry=r).labels(daemon).inc(n)
    return generate_latest(r).decode()


def status(name: str, pid: int | None, restarts: int = 0,
           event: RestartEvent | None = None) -> ChildStatus:
    return ChildStatus(name, pid, restarts, event)


def killed(name: str, delay_ms: int | None = 1_000) -> RestartEvent:
    return RestartEvent(name, at_ms=5_000, uptime_ms=4_000, exit_code=None, signal="SIGKILL",
                        attempt=1, next_delay_ms=delay_ms)


def test_the_metrics_text_sums_labels_into_one_sample() -> None:
    text = exposition("alerter", consumed={0: 7, 1: 5}, outputs=4, lag=30, dead=2,
                      alerts={"high/r1": 2, "high/r2": 1, "critical/r3": 1}, new_alerts=4)
    assert parse_metrics(text) == Sample(consumed=12, outputs=4, dead_letters=2, new_alerts=4,
                                         lag=31, alerts={"high": 3, "critical": 1})


def test_a_daemon_without_the_optional_metrics_reads_zero() -> None:
    sample = parse_metrics(exposition("notifier", consumed={}))
    assert (sample.consumed, sample.lake_objects, sample.alerts) == (0, 0, {})


def test_rates_come_from_successive_scrapes_and_totals_survive_a_restart() -> None:
    board = Board("bootstrap b | lake l")
    first = parse_metrics(exposition("archiver", consumed={0: 100}, lake_rows=90,
                                     lake_objects=2, lake_bytes=9_000))
    board.update([status("archiver", 10)], {"archiver": first}, [], 1.0)
    second = parse_metrics(exposition("archiver", consumed={0: 300}, lake_rows=250,
                                      lake_objects=3, lake_bytes=20_000))
    view = board.update([status("archiver", 10)], {"archiver": second}, [], 3.0)
    assert view.rows[0].in_per_s == 100.0  # 200 records in 2 s
    # SIGKILLed: no answer while it waits for its restart.
    event = killed("archiver")
    view = board.update([status("archiver", None, 1, event)], {"archiver": None}, [event], 4.0)
    assert (view.rows[0].state, view.rows[0].total.consumed) == ("restarting", 300)
    # The new process counts from 0 (the lake rows it re-reads too): the board keeps the past.
    third = parse_metrics(exposition("archiver", consumed={0: 50}, lake_rows=40,
                                     lake_objects=1, lake_bytes=4_000))
    view = board.update([status("archiver", 11, 1, event)], {"archiver": third}, [event], 5.0)
    row = view.rows[0]
    assert (row.state, row.restarts, row.total.consumed) == ("up", 1, 350)
    assert view.lake() == (4, 290, 24_000)
    assert row.total.lag == third.lag  # a gauge: the new process's, not a sum
    assert view.events == ("archiver killed by SIGKILL after 4.0 s; restart 1 in 1.0 s",)


def test_the_json_line_holds_every_number_and_the_generator_only_its_state() -> None:
    board = Board("bootstrap b | lake l")
    given_up = killed("notifier", delay_ms=None)
    alerter = parse_metrics(exposition("alerter", consumed={0: 10}, outputs=3,
                                       alerts={"low/x": 1, "critical/y": 2}, new_alerts=3))
    view = board.update(
        [status("alerter", 1), status("notifier", None, 1, given_up), status("generator", 3)],
        {"alerter": alerter, "notifier": None, "generator": None}, [given_up], 2.0)
    doc = json.loads(json.dumps(view.as_json()))
    assert doc["daemons"]["alerter"]["consumed"] == 10
    assert doc["daemons"]["notifier"] == {"state": "given up", "restarts": 1}
    assert doc["daemons"]["generator"] == {"state": "up", "restarts": 0}
    assert doc["alerts"] == 3
    assert list(doc["alerts_by_severity"].items()) == [("critical", 2), ("low", 1)]
    assert doc["restart_events"] == [
        "notifier killed by SIGKILL after 4.0 s; not restarted (bad config or usage)"]


def test_the_dashboard_renders_without_a_terminal() -> None:
    board = Board("bootstrap 127.0.0.1:9092 | lake file://var/lake | archiver")
    sample = parse_metrics(exposition("archiver", consumed={0: 1234}, lake_objects=2,
                                      lake_rows=1000, lake_bytes=2_500_000))
    latest = ["10:00:01 high     Root console login", "10:00:02 critical CloudTrail stopped"]
    view = board.update([status("archiver", 1), status("generator", 2)],
                        {"archiver": sample}, [], 1.0, latest)
    out = io.StringIO()
    Console(file=out, width=160, force_terminal=False).print(render(view))
    text = out.getvalue()
    assert "1,234" in text and "lake (archiver): 2 objects, 1,000 rows, 2.5 MB" in text
    # newest alert first, under the alerts line
    assert text.index("CloudTrail stopped") < text.index("Root console login")
    assert text.index("alerts:") < text.index("CloudTrail stopped")
    assert "bootstrap 127.0.0.1:9092 | lake file://var/lake" in text
    assert "by severity: not exported by the alerter" in text
    generator_line = next(line for line in text.splitlines() if "generator" in line)
    assert "-" in generator_line and "restarts none" in text


def test_seven_children_and_five_long_alerts_fit_an_80x24_terminal() -> None:
    board = Board("bootstrap 127.0.0.1:9092 | lake file://var/lake | archiver digester alerter "
                  "notifier aggregator mirror generator | logs var/run-logs/")
    names_ = ("archiver", "digester", "alerter", "notifier", "aggregator", "mirror", "generator")
    sample = parse_metrics(exposition("x", consumed={0: 1_234_567}, outputs=1_234_567))
    latest = [f"10:00:0{i} critical " + "a very long alert title " * 5 for i in range(5)]
    crashes = [killed(n) for n in names_[:6]]  # more restarts than the board lists
    view = board.update([status(n, i, 1) for i, n in enumerate(names_, 1)],
                        dict.fromkeys(names_, sample), crashes, 1.0, latest)
    out = io.StringIO()
    Console(file=out, width=80, force_terminal=False).print(render(view))
    lines = out.getvalue().splitlines()
    assert len(lines) <= 24, "\n".join(lines)
    assert all(len(line) <= 80 for line in lines)
    assert all(name in out.getvalue() for name in names_)  # names are never cut
    assert out.getvalue().count("1,235k") == 7 * 2  # consumed and outputs, whole
    assert sum("a very long alert title" in line for line in lines) == 5
    assert "restarts 7" in out.getvalue()  # every child's, not only the events listed
    assert sum("latest restart: mirror killed by SIGKILL" in line for line in lines) == 1


def test_the_port_base_skips_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        base = free_port_base(port - 2, 3)
    assert base > port


def test_counts_never_take_more_than_six_characters() -> None:
    assert [count_text(n) for n in (0, 99_999, 100_000, 9_999_499, 12_345_678, 1e9)] == [
        "0", "99,999", "100k", "9,999k", "12.3M", "1,000.0M"]


def test_logged_warnings_are_their_own_count_beside_kafka_errors() -> None:
    r = CollectorRegistry()
    Counter(names.LOG_WARNINGS, "", ["daemon"], registry=r).labels("alerter").inc(4)
    Counter(names.KAFKA_ERRORS, "", ["daemon"], registry=r).labels("alerter").inc(1)
    sample = parse_metrics(generate_latest(r).decode())
    assert (sample.warnings, sample.kafka_errors) == (4, 1)
    view = Board("c").update([status("alerter", 1)], {"alerter": sample}, [], 1.0)
    assert (view.as_json()["warnings"], view.as_json()["kafka_errors"]) == (4, 1)


def test_open_windows_are_a_gauge_beside_the_windows_closed() -> None:
    def scrape_of(closed: int, open_: int) -> Sample:
        r = CollectorRegistry()
        Counter("trailpipe_aggregate_windows_total", "", ["daemon"],
                registry=r).labels("aggregator").inc(closed)
        Gauge("trailpipe_open_windows", "", ["daemon"], registry=r).labels("aggregator").set(open_)
        return parse_metrics(generate_latest(r).decode())

    board = Board("c")
    board.update([status("aggregator", 1)], {"aggregator": scrape_of(10, 300)}, [], 1.0)
    restarted = killed("aggregator")
    view = board.update([status("aggregator", 2, 1, restarted)],
                        {"aggregator": scrape_of(2, 50)}, [restarted], 2.0)
    assert (view.as_json()["aggregate_windows"], view.as_json()["open_windows"]) == (12, 50)
