"""``trailpipe consume NAME --metrics-port`` of the archiver, alerter, aggregator, mirror,
notifier and digester as real processes on the real broker (the lakes on the session's S3
endpoint): fed their input, scraped once they consumed it all and are idle, then stopped with
SIGTERM. Each /metrics parses with prometheus_client's text parser and every counter with a
summary key equals the JSON summary the daemon prints on exit; the alerter's alerts by
severity and rule sum to its summary's alerts.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alert_kit import alerter_topics, produce_events
from confluent_kafka import Consumer, TopicPartition
from kit import produce
from test_archiver import generate, make_lake, s3_client
from test_metrics_endpoint import free_port, get, samples, total, wait_for
from test_notifier import alert

from pipeline.lake.keys import generate_keypair
from pipeline.lake.layout import HOUR_MS, Delivery, object_key
from pipeline.lake.store import open_store
from pipeline.metrics import names
from producers.generator.engine import Generator

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
Scraped = dict[tuple[str, tuple[tuple[str, str], ...]], float]
START_MS = 1_764_000_000_000


@dataclass
class Case:
    """One daemon's run: its settings (``TRAILPIPE_*`` variables), the records produced per
    input topic, its consumer group, a config file for what variables cannot carry (tables),
    and the daemon's own state to wait for besides having consumed and committed it all."""

    name: str
    env: dict[str, str]
    inputs: dict[str, int]
    group: str
    config: str = ""
    idle: Callable[[Scraped], bool] = field(default=lambda _s: True)
    internal: tuple[str, ...] = ()  # topics it writes in transactions and reads back
    positive: tuple[str, ...] = ()  # summary counters the input must have moved


def variables(settings: dict[str, Any]) -> dict[str, str]:
    """``{"topics.events": "x"}`` → ``{"TRAILPIPE_TOPICS__EVENTS": "x"}``."""
    return {"TRAILPIPE_" + k.upper().replace(".", "__"): str(v) for k, v in settings.items()}


def records(count: int, scenarios: tuple[str, ...] = (), events_per_second: float = 200.0
            ) -> list[dict[str, Any]]:
    gen = Generator(11, 4, 3, start_ms=START_MS, scenarios=list(scenarios),
                    events_per_second=events_per_second, scenario_every=400)
    return list(gen.records(count))


def bucket(s3_endpoint: str, unique: str) -> str:
    name = f"metrics-{unique}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/lake"


def alerter_case(kafka: Any, make_topic: Any, unique: str, **_: Any) -> Case:
    topics = alerter_topics(make_topic)
    count = produce_events(kafka.bootstrap, topics["events"], records(
        2_000, ("root-login-no-mfa", "kms-key-deletion", "sg-open-world")))
    return Case("alerter", variables({
        **{f"topics.{role}": name for role, name in topics.items()},
        "alerter.group": f"alerter-{unique}", "alerter.transactional_id": f"tx-{unique}"}),
        {topics["events"]: count}, group=f"alerter-{unique}",
        internal=(topics["alerter_hits"],), positive=("hits", "alerts"))


def aggregator_case(kafka: Any, make_topic: Any, unique: str, s3_endpoint: str,
                    **_: Any) -> Case:
    topics = {"events": make_topic("events", 3),
              "aggregates": make_topic("aggregates", 2, **{"cleanup.policy": "compact"}),
              "aggregator_state": make_topic("aggstate", 3, **{"cleanup.policy": "compact"}),
              "insights": make_topic("insights", 1), "health": make_topic("health", 1),
              "dlq": make_topic("dlq", 1)}
    # 2 events/s of event time: 1-minute windows close, so lake objects are written
    count = produce_events(kafka.bootstrap, topics["events"],
                           records(2_000, events_per_second=2.0))
    return Case("aggregator", variables({
        **{f"topics.{role}": name for role, name in topics.items()},
        "storage.lake": bucket(s3_endpoint, unique), "storage.s3_endpoint": s3_endpoint,
        "aggregator.group": f"aggregator-{unique}", "aggregator.grace_ms": 5_000,
        "aggregator.transactional_id": f"agg-tx-{unique}"}),
        {topics["events"]: count}, group=f"aggregator-{unique}",
        idle=lambda s: total(s, "trailpipe_lake_objects_total") > 0,
        positive=("windows", "lake_objects", "lake_rows", "lake_bytes"))


def mirror_case(kafka: Any, make_topic: Any, unique: str, **_: Any) -> Case:
    topics = {"events": make_topic("events", 3), "events_json": make_topic("events-json", 3),
              "alerts": make_topic("alerts", 1), "alerts_json": make_topic("alerts-json", 1),
              "siem_subscriptions": make_topic("subs", 1, **{"cleanup.policy": "compact"}),
              "dlq": make_topic("dlq", 1)}
    events = produce_events(kafka.bootstrap, topics["events"], records(1_000))
    alerts = produce(kafka.bootstrap, topics["alerts"], [alert(n) for n in range(5)])
    return Case("mirror", variables({
        **{f"topics.{role}": name for role, name in topics.items()},
        "mirror.group": f"mirror-{unique}", "mirror.transactional_id": f"tx-mirror-{unique}",
        "mirror.commit_interval_ms": 200}),
        {topics["events"]: events, topics["alerts"]: alerts}, group=f"mirror-{unique}",
        positive=("mirrored", "alerts_mirrored"))


def notifier_case(kafka: Any, make_topic: Any, unique: str, **_: Any) -> Case:
    topics = {"alerts": make_topic("alerts", 2), "dlq": make_topic("dlq", 1),
              "health": make_topic("health", 1)}
    copy = make_topic("alerts-copy", 1)
    # one poison value: the Runner dead-letters it, so that counter is not only 0 == 0
    count = produce(kafka.bootstrap, topics["alerts"],
                    [*(alert(n) for n in range(6)), b"not an alert"])
    return Case("notifier", variables({
        **{f"topics.{role}": name for role, name in topics.items()},
        "notifier.group": f"notifier-{unique}"}), {topics["alerts"]: count},
        group=f"notifier-{unique}",
        config=f'[[notifier.routes]]\nname = "copy"\ntype = "kafka"\ntopic = "{copy}"\n')


def digester_case(kafka: Any, make_topic: Any, unique: str, s3_endpoint: str,
                  tmp_path: Path) -> Case:
    """Notices delivered 2 to 4 hours ago: their hours close at once (no grace), so the
    digester writes a digest per hour from the oldest one's to the last closed one."""
    lake = bucket(s3_endpoint, unique)
    store = open_store(lake, s3_endpoint=s3_endpoint)
    topic, now_ms = make_topic("deliveries", 1), time.time_ns() // 1_000_000
    notices = []
    for n, ago_ms in enumerate((4 * HOUR_MS, 3 * HOUR_MS, 2 * HOUR_MS + 60_000)):
        data, at_ms = f"object {n}".encode() * 40, now_ms - ago_ms
        key = object_key("123456789012", "eu-west-1", at_ms, "audit.events.v1", 0, n * 40)
        store.put(key, data)
        notices.append(Delivery(store.url, key, hashlib.sha256(data).hexdigest(), len(data),
                                40, "audit.events.v1", 0, n * 40, n * 40 + 39, at_ms, at_ms,
                                at_ms).to_json())
    private, _public, _ = generate_keypair(tmp_path / "digest.pem")
    count = produce(kafka.bootstrap, topic, notices)
    hours = 4  # closed: the hour of the oldest notice (now - 4 h) and the 3 after it
    return Case("digester", variables({
        "topics.deliveries": topic, "topics.dlq": make_topic("dlq", 1),
        "storage.lake": lake, "storage.s3_endpoint": s3_endpoint,
        "digest.group": f"digester-{unique}", "digest.private_key": private,
        "digest.close_grace_ms": 0, "digest.startup_settle_ms": 0}),
        {topic: count}, group=f"digester-{unique}",
        idle=lambda s: total(s, "trailpipe_digests_total") >= hours,
        positive=("digests_written",))


def archiver_case(kafka: Any, make_topic: Any, unique: str, s3_endpoint: str,
                  **_: Any) -> Case:
    """(test_metrics_endpoint checks the archiver's /readyz and core counters; here its lake
    bytes too, through the same path as every daemon.)"""
    lake = make_lake(kafka, make_topic, unique, s3_endpoint, partitions=3)
    count = 500
    generate(kafka, lake["topics"]["events"], count, rate=5000)
    return Case("archiver", variables({
        **{f"topics.{role}": name for role, name in lake["topics"].items()},
        "storage.lake": f"s3://{lake['bucket']}/lake", "storage.s3_endpoint": s3_endpoint,
        "archiver.group": lake["archiver"]["group"], "archiver.max_age_ms": 1_500}),
        {lake["topics"]["events"]: count}, group=lake["archiver"]["group"],
        idle=lambda s: total(s, "trailpipe_lake_rows_total") == count,
        positive=("objects_written", "rows_written", "bytes_written"))


CASES: dict[str, Callable[..., Case]] = {
    "archiver": archiver_case, "alerter": alerter_case, "aggregator": aggregator_case,
    "mirror": mirror_case, "notifier": notifier_case, "digester": digester_case}


def consumed_by_topic(scraped: Scraped) -> dict[str, float]:
    out: dict[str, float] = {}
    for (name, labels), value in scraped.items():
        if name == names.CONSUMED:
            topic = dict(labels)["topic"]
            out[topic] = out.get(topic, 0) + value
    return out


def caught_up(bootstrap: str, group: str, topics: set[str], transactional: set[str]) -> bool:
    """``group`` committed every partition of ``topics`` up to its end. (The lag gauge cannot
    tell: a transactional daemon commits through its producer, so librdkafka never learns the
    committed offset and reports no lag.) A partition written only in transactions ends with
    a commit marker the committed offset stops before: one short of the end is caught up."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(t, p) for t in sorted(topics)
               for p in consumer.list_topics(t, timeout=10).topics[t].partitions]
        for tp in consumer.committed(tps, timeout=10):
            end = consumer.get_watermark_offsets(tp, timeout=10)[1]
            slack = 1 if tp.topic in transactional else 0
            if end and tp.offset < end - slack:
                return False
        return True
    finally:
        consumer.close()


def start(case: Case, bootstrap: str, tmp_path: Path, port: int
          ) -> tuple[subprocess.Popen[str], Path]:
    config, log = tmp_path / f"{case.name}.toml", tmp_path / f"{case.name}.log"
    config.write_text(case.config)
    env = {**os.environ, "TRAILPIPE_KAFKA__BOOTSTRAP": bootstrap,
           "TRAILPIPE_RUNNER__SESSION_TIMEOUT_MS": "6000",
           "TRAILPIPE_METRICS__LAG_INTERVAL_MS": "1000", **case.env}
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "trailpipe"), "consume", case.name, "--config",
             str(config), "--metrics-port", str(port)],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO, env=env)
    return proc, log


@dataclass(frozen=True)
class Outcome:
    scraped: Scraped
    summary: dict[str, Any]
    hours_after_scrape: int  # hour boundaries between the scrape and the exit (usually 0)


def run(case: Case, bootstrap: str, tmp_path: Path) -> Outcome:
    """Start the daemon, wait until it consumed every input record and is idle (its
    ``case.idle`` state reached, every input partition committed to its end), scrape, stop it
    with SIGTERM; the scrape and the summary it printed."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start(case, bootstrap, tmp_path, port)
    inputs = {*case.inputs, *case.internal}
    try:
        wait_for("serving /metrics", lambda: get(f"{base}/metrics")[0] == 200, proc, log)
        wait_for("all input consumed", lambda: all(
            consumed_by_topic(samples(base)).get(t, 0) >= n for t, n in case.inputs.items()),
            proc, log)
        wait_for("idle", lambda: case.idle(samples(base)) and caught_up(
            bootstrap, case.group, inputs, set(case.internal)), proc, log)
        scraped, scraped_hour = samples(base), time.time_ns() // 1_000_000 // HOUR_MS
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    return Outcome(scraped, json.loads(out.strip().splitlines()[-1]),
                   time.time_ns() // 1_000_000 // HOUR_MS - scraped_hour)


def assert_counters_match(scraped: Scraped, summary: dict[str, Any]) -> None:
    """Every counter with a summary key equals it (the core ones and the daemon's EXTRAS).
    Gauges are left out: they are the state of the moment (the aggregator's open windows are
    dropped with its partitions on the way out)."""
    core = {names.CONSUMED: "consumed", names.PROCESSED: "processed",
            names.DEAD_LETTERS: "dead_lettered", names.OUTPUTS: "outputs",
            names.COMMITS: "commits", names.REWINDS: "rewinds"}
    extras = {e.name: key for key, e in names.EXTRAS.get(summary["daemon"], {}).items()
              if e.kind == "counter"}
    for metric, key in {**core, **extras}.items():
        assert key in summary, (key, summary)
        assert total(scraped, metric) == summary[key], (metric, key, summary)


@pytest.mark.parametrize("daemon", list(CASES))
def test_metrics_match_the_summary(daemon: str, kafka: Any, make_topic: Any, unique: str,
                                   s3_endpoint: str, tmp_path: Path) -> None:
    case = CASES[daemon](kafka=kafka, make_topic=make_topic, unique=unique,
                         s3_endpoint=s3_endpoint, tmp_path=tmp_path)
    outcome = run(case, kafka.bootstrap, tmp_path)
    scraped, summary = outcome.scraped, outcome.summary
    if daemon == "digester":  # an hour that closed after the scrape adds its digest
        scraped[("trailpipe_digests_total", (("daemon", "digester"),))] += \
            outcome.hours_after_scrape
    assert {t: n for t, n in consumed_by_topic(scraped).items() if t in case.inputs} \
        == case.inputs
    assert_counters_match(scraped, summary)
    assert summary["processed"] > 0 and summary["outputs"] > 0, summary
    assert all(summary[key] > 0 for key in case.positive), summary
    if daemon == "alerter":
        assert total(scraped, "trailpipe_alerts_total") == summary["alerts"] > 0
        severities = {dict(labels).get("severity") for name, labels in scraped
                      if name == "trailpipe_alerts_total"}
        assert severities - {None}, severities
    if daemon == "notifier":
        assert summary["dead_lettered"] == 1
