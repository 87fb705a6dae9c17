"""``trailpipe report`` for a generated day, rendered by headless Chromium (Debian's
``chromium``): every chart the report says it drew is a rendered plotly plot in the DOM
(``main-svg`` inside its div), and a screenshot is saved under ``var/test-artifacts/``.

The day: the generator's traffic with every attack scenario, archived as the archiver keys
and writes objects (a file lake), with its 1h aggregates; alerts from a retro-hunt of that lake
(``trailpipe replay --source lake --alerts-out``, the configured rules); insights as two
CloudTrail Insight events (Start, End) on an insights topic of the test broker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer

from consumers.archiver.objects import build_objects
from pipeline.aggregates.table import object_key
from pipeline.aggregates.table import to_table as aggregate_table
from pipeline.events import IngestMeta, to_avro
from pipeline.events.wire import encode
from pipeline.lake.columns import to_table
from pipeline.lake.config import ArchiverConfig
from producers.generator.engine import SCENARIOS, Generator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "var" / "test-artifacts"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DIMENSIONS = ("window_start_ms", "account", "region", "event_source", "event_name", "outcome",
              "identity_type")
T0 = 1_764_201_600_000 - 1_764_201_600_000 % DAY_MS  # 2025-11-27T00:00Z
FROM, TO = "2025-11-27T00:00Z", "2025-11-28T00:00Z"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 50_000  # a blank 1400x8000 page compresses to a few kB


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("SKIPPED LOUDLY: Debian's `chromium` is not installed "
                    "(apt-get install -y chromium); the report's render test cannot run")
    return path


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                          cwd=REPO, env={**os.environ, "TRAILPIPE_LOG__FORMAT": "json",
                                         **(env or {})})


def day_datums() -> list[dict[str, Any]]:
    """One generated day: 4,000 calls over ~21 hours, every scenario."""
    gen = Generator(5, 3, 2, start_ms=T0, scenarios=tuple(SCENARIOS), events_per_second=0.05,
                    scenario_every=1500)
    return [to_avro(r, ingest=IngestMeta(T0 + i, "gen", "report-test", f"g#{i}"))
            for i, r in enumerate(gen.records(4000))]


def write_day_lake(root: Path, topic: str, datums: list[dict[str, Any]]) -> str:
    """A file lake of ``datums`` as the archiver keys and writes the objects of ``topic``'s
    partition 0 (offsets 0..)."""
    table = to_table(datums, partition=0, offsets=list(range(len(datums))),
                     timestamps_ms=[T0 + i for i in range(len(datums))])
    for obj in build_objects(table, topic=topic, partition=0,
                             cfg=ArchiverConfig()):
        path = root / obj.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(obj.data)
    return f"file://{root}"


def write_day_aggregates(root: Path, datums: list[dict[str, Any]]) -> None:
    """The day's 1h Aggregate rows (counted here per window and dimensions; one base record
    each) as one object under ``aggregates/`` per day, as the aggregator lays them out."""
    counts: Counter[tuple[Any, ...]] = Counter()
    for d in datums:
        start = d["eventTimeMs"] - d["eventTimeMs"] % HOUR_MS
        counts[(start, d["recipientAccountId"], d["awsRegion"], d["eventSource"],
                d["eventName"], d.get("errorCode") or "OK",
                (d.get("userIdentity") or {}).get("type") or "")] += 1
    rows = [dict(zip(DIMENSIONS, key, strict=True)) | {
        "window_size": "1h", "window_end_ms": key[0] + HOUR_MS, "count": n,
        "distinct_principals": 0, "distinct_source_ips": 0, "values_complete": False,
        "partition": 0, "trigger_offset": 0, "watermark_ms": key[0], "emitted_ms": key[0]}
        for key, n in sorted(counts.items())]
    path = root / object_key("1h", T0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(aggregate_table(rows), path)


def insight_event(state: str, time_ms: int) -> dict[str, Any]:
    return {"eventVersion": "1.08", "eventID": f"insight-{state}",
            "eventTime": f"{datetime.fromtimestamp(time_ms / 1000, UTC):%Y-%m-%dT%H:%M:%SZ}",
            "awsRegion": "us-east-1", "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": "111111111111", "sharedEventID": "shared-report-test",
            "eventCategory": "Insight",
            "insightDetails": {"state": state, "eventSource": "iam.amazonaws.com",
                               "eventName": "CreateUser", "insightType": "ApiCallRateInsight"}}


def produce_insights(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for state, time_ms in (("Start", T0 + 6 * 3_600_000), ("End", T0 + 8 * 3_600_000)):
        ingest = IngestMeta(time_ms, "aggregator", "report-test", f"insight-{state}")
        producer.produce(topic, encode(to_avro(insight_event(state, time_ms), ingest=ingest)))
    assert producer.flush(30) == 0


def hunt_alerts(lake: str, bootstrap: str, topic: str, out: Path) -> int:
    """Retro-hunt the lake with the configured rules; the alerts written. ``topic`` does not
    exist, so a lake-only replay reads the whole lake in the window."""
    result = run(sys.executable, "-m", "pipeline.cli.app", "replay", "--source", "lake",
                 "--from", FROM, "--to", TO, "--bootstrap", bootstrap, "--topic", topic,
                 "--out", str(out.with_suffix(".events.jsonl")), "--alerts-out", str(out),
                 env={"TRAILPIPE_STORAGE__LAKE": lake})
    assert result.returncode == 0, result.stderr[-3000:]
    return len(out.read_text().splitlines())


def chart_divs(dom: str) -> dict[str, str]:
    """Each chart div's inner DOM by section key (up to the next section)."""
    parts = re.split(r'<section id="section-', dom)
    return {m.group(1): part for part in parts[1:]
            if (m := re.match(r'([a-z_]+)".*?<div class="chart"', part, re.S))}


def test_a_generated_day_renders_with_every_chart(tmp_path: Path, kafka: Any,
                                                  make_topic: Any, unique: str) -> None:
    browser = chromium()
    datums = day_datums()
    topic = f"test.absent.{unique}"  # never created: the replay reads the lake alone
    lake = write_day_lake(tmp_path / "lake", topic, datums)
    write_day_aggregates(tmp_path / "lake", datums)
    alerts = tmp_path / "alerts.jsonl"
    assert hunt_alerts(lake, kafka.bootstrap, topic, alerts) > 0
    insights = make_topic("insights", partitions=1)
    produce_insights(kafka.bootstrap, insights)
    page = tmp_path / "report.html"
    result = run(sys.executable, "-m", "pipeline.cli.app", "report", "--from", FROM, "--to", TO,
                 "--out", str(page), "--alerts", str(alerts), "--bootstrap", kafka.bootstrap,
                 env={"TRAILPIPE_STORAGE__LAKE": lake, "TRAILPIPE_TOPICS__INSIGHTS": insights})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    drawn = [k for k, v in summary["sections"].items() if "rows" in v]
    assert summary["calls"] == 4000 and summary["charts"] == len(drawn) == 10, summary
    html = page.read_text()
    assert not re.search(r"<script[^>]*src=[\"']?https?://", html)

    dom = run(browser, "--headless", "--disable-gpu", "--no-sandbox",
              "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = chart_divs(dom.stdout)
    assert sorted(rendered) == sorted(drawn)
    for key, inner in rendered.items():
        assert 'class="main-svg"' in inner, f"chart {key} was not rendered"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    taken = run(browser, "--headless", "--disable-gpu", "--no-sandbox",
                "--virtual-time-budget=10000", f"--screenshot={shot}",
                "--window-size=1400,8000", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > MIN_PNG_BYTES, len(data)


def alert_datum(alert_id: str, update: int, severity: str, first_seen_ms: int) -> dict[str, Any]:
    return {"alert_id": alert_id, "update": update, "kind": "rule", "rule_id": f"r-{alert_id}",
            "title": f"title {alert_id}", "severity": severity, "tags": [],
            "dedup_key": "k", "window_start_ms": first_seen_ms, "account": "111111111111",
            "region": "us-east-1", "principal": None, "source_ip": None, "count": 1 + update,
            "first_seen_ms": first_seen_ms, "last_seen_ms": first_seen_ms,
            "sample_event_ids": [], "rule_ids": [], "context": {}, "rule_source": "native:t",
            "created_ms": first_seen_ms + update}


def test_without_an_alerts_file_the_report_reads_the_alerts_topic(tmp_path: Path, kafka: Any,
                                                                  make_topic: Any) -> None:
    from pipeline.rules.alert import encode_alert

    topic = make_topic("alerts", partitions=2)
    inside = int(datetime(2025, 11, 27, 12, tzinfo=UTC).timestamp() * 1000)
    datums = [alert_datum("a", 0, "high", inside), alert_datum("a", 1, "high", inside),
              alert_datum("b", 0, "critical", inside + 60_000),
              alert_datum("c", 0, "low", inside - 86_400_000)]  # the day before: outside
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for datum in datums:
        producer.produce(topic, key=datum["alert_id"].encode(), value=encode_alert(datum))
    producer.produce(topic, value=b"not an alert")
    assert producer.flush(30) == 0
    page = tmp_path / "report.html"
    result = run(sys.executable, "-m", "pipeline.cli.app", "report", "--from", FROM, "--to", TO,
                 "--out", str(page), "--bootstrap", kafka.bootstrap,
                 "--lake", f"file://{tmp_path / 'lake'}",
                 env={"TRAILPIPE_TOPICS__ALERTS": topic,
                      "TRAILPIPE_TOPICS__INSIGHTS": make_topic("insights", partitions=1)})
    assert result.returncode == 0, result.stderr[-3000:]
    alerts = json.loads(result.stderr.strip().splitlines()[-1])["sections"]["alerts"]
    assert alerts == {"rows": 2, "note": f"1 undecodable records on {topic} skipped"}
    html = page.read_text()
    # "a" once (its update replaces the opening), "b"; "c" is outside the window
    assert "title a" in html and "title b" in html and "title c" not in html
