"""The trailpipe command against the real broker: topics, config errors, the main job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from kit import read_all

from pipeline.rules.alert import decode_alert
from pipeline.topics import DOCUMENTED_TOPICS

pytestmark = pytest.mark.integration
TRAILPIPE = [sys.executable, "-m", "pipeline.cli.app"]


def trailpipe(*args: str, env: dict[str, str] | None = None,
              timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json", **(env or {})}
    return subprocess.run([*TRAILPIPE, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout_s)


def test_bad_config_file_exits_2_listing_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\n[kafka.sasl]\nusername = "u"\n'
                   '[runner]\nbatch_size = "lots"\ncolour = "blue"\n')
    result = trailpipe("config", "show", "--config", str(bad))
    assert result.returncode == 2
    assert "kafka.sasl.password: required value missing" in result.stderr
    assert "runner.colour: unknown key" in result.stderr
    assert "runner.batch_size:" in result.stderr
    assert result.stdout == ""


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\n'
                    '[kafka.sasl]\nusername = "u"\npassword = "s3cret-value"\n')
    result = trailpipe("config", "show", "--config", str(good), "--bootstrap", "h:1")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["kafka"]["bootstrap"] == "h:1"
    assert shown["kafka"]["sasl"]["password"] == "**********"
    assert "s3cret-value" not in result.stdout + result.stderr


@pytest.mark.usefixtures("no_documented_topics")
def test_topics_create_is_idempotent_and_reports_drift(kafka, unique) -> None:
    # Our own topic names: the documented ones may already exist with other settings.
    first = trailpipe("topics", "create", "--bootstrap", kafka.bootstrap,
                      env={"TRAILPIPE_TOPICS__PARTITIONS": "2"})
    assert first.returncode == 0, first.stderr
    again = trailpipe("topics", "create", "--bootstrap", kafka.bootstrap, "--check",
                      env={"TRAILPIPE_TOPICS__PARTITIONS": "2"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(line.startswith("exists") for line in again.stdout.splitlines())
    meta = AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10)
    assert len(meta.topics["audit.events.v1"].partitions) == 2
    drift = trailpipe("topics", "create", "--bootstrap", kafka.bootstrap, "--check",
                      env={"TRAILPIPE_TOPICS__PARTITIONS": "4",
                           "TRAILPIPE_TOPICS__RETENTION_MS": "3600000"})
    assert drift.returncode == 1
    assert "drift: partitions: has 2, config wants 4" in drift.stdout
    assert "drift: retention.ms: has 604800000, config wants 3600000" in drift.stdout


@pytest.mark.usefixtures("no_documented_topics")
def test_run_creates_topics_and_stops_after_duration(kafka, tmp_path: Path) -> None:
    """The main job: topics, generator with attack scenarios, archiver, alerter, notifier,
    aggregator."""
    result = trailpipe("run", "--bootstrap", kafka.bootstrap, "--duration", "12",
                       "--rate", "1000",
                       env={"TRAILPIPE_TOPICS__PARTITIONS": "2",
                            "TRAILPIPE_GENERATOR__SCENARIO_EVERY": "500",
                            "TRAILPIPE_STORAGE__LAKE": f"file://{tmp_path}/lake"})
    assert result.returncode == 0, result.stderr
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    events = [entry["event"] for entry in logs]
    assert events.count("topic_ready") == len(DOCUMENTED_TOPICS)
    assert "status" in events and "status_stopped" in events
    assert sorted(e["daemon"] for e in logs if e["event"] == "daemon_stopped") == [
        "aggregator", "alerter", "archiver", "mirror", "notifier"]
    assert all("alerts " in e["line"] and "top calls" in e["line"] and "json mirror" in e["line"]
               for e in logs if e["event"] == "status")
    alerts = [decode_alert(m.value()) for m in read_all(kafka.bootstrap, "audit.alerts.v1")]
    assert any(a["severity"] in ("high", "critical") for a in alerts), alerts[:3]
    mirrored = [json.loads(m.value()) for m in read_all(kafka.bootstrap, "audit.events.json.v1")]
    assert mirrored and all(r["eventID"] and r["eventTime"] for r in mirrored)


def test_no_bootstrap_and_no_dev_cluster_exits_2(tmp_path: Path) -> None:
    result = trailpipe("topics", "create",
                       env={"TRAILPIPE_DEV__STATE_DIR": str(tmp_path / "nothing-here")})
    assert result.returncode == 2
    assert "no Kafka bootstrap configured" in result.stderr
