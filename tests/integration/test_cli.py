"""The trailpipe command against the real broker: topics, config errors (`trailpipe run`:
test_run_supervised)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

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


def test_no_bootstrap_and_no_dev_cluster_exits_2(tmp_path: Path) -> None:
    result = trailpipe("topics", "create",
                       env={"TRAILPIPE_DEV__STATE_DIR": str(tmp_path / "nothing-here")})
    assert result.returncode == 2
    assert "no Kafka bootstrap configured" in result.stderr
