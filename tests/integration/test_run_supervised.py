"""``trailpipe run`` as the supervisor, end to end against the real broker: every daemon and the
generator as child processes, the dashboard's JSON lines (no terminal), the alerter and the
archiver SIGKILLed mid-run and reported restarted (the lake still holds each record exactly
once), exit 0 with a summary and commands to paste."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from kit import committed, read_all

from pipeline.rules.alert import decode_alert
from pipeline.supervisor.config import DEFAULT_DAEMONS
from pipeline.topics import DOCUMENTED_TOPICS

pytestmark = pytest.mark.integration
DURATION_S = 45


def json_lines(path: Path, event: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``event`` written so far to ``path``."""
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{") and f'"event": "{event}"' in line:
            found.append(json.loads(line))
    return found


def child_pid(parent: int, daemon: str) -> int | None:
    """The pid of ``trailpipe consume DAEMON`` among ``parent``'s children (this run's only)."""
    out = subprocess.run(["pgrep", "-P", str(parent), "-f", f"consume {daemon}"],
                         capture_output=True, text=True, check=False).stdout.split()
    return int(out[0]) if len(out) == 1 else None


@pytest.fixture
def own_key(tmp_path: Path) -> dict[str, str]:
    """A production run (--no-generator) signs digests with a key of its own."""
    from pipeline.lake.keys import generate_keypair

    key, _, _ = generate_keypair(tmp_path / "digest.key")
    return {"TRAILPIPE_DIGEST__PRIVATE_KEY": str(key)}


def lake_coordinates(lake: Path) -> list[tuple[int, int]]:
    """(partition, offset) of every row of the file lake's event objects."""
    found: list[tuple[int, int]] = []
    for path in lake.rglob("*.parquet"):
        if "events" in path.relative_to(lake).parts:
            t = pq.read_table(path, columns=["_partition", "_offset"])
            found += zip(t["_partition"].to_pylist(), t["_offset"].to_pylist(), strict=True)
    return found


def wait_for(check: Any, what: str, proc: subprocess.Popen[str], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if value := check():
            return value
        time.sleep(0.2)
    pytest.fail(f"waited {timeout_s} s for {what} (run exited: {proc.poll()})")


@pytest.mark.usefixtures("no_documented_topics")
def test_run_supervises_every_daemon_and_reports_a_sigkilled_one_restarted(
        kafka: Any, tmp_path: Path) -> None:
    err_path = tmp_path / "stderr.txt"
    env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json", "TRAILPIPE_TOPICS__PARTITIONS": "2",
           "TRAILPIPE_GENERATOR__SCENARIO_EVERY": "500",
           "TRAILPIPE_RUNNER__SESSION_TIMEOUT_MS": "6000"}  # the killed member leaves in 6 s
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli.app", "run", "--bootstrap", kafka.bootstrap,
             "--duration", str(DURATION_S), "--rate", "500", "--lake",
             f"file://{tmp_path}/lake"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=err, text=True, start_new_session=True)
        try:
            wait_for(lambda: any(d["daemons"]["alerter"].get("consumed", 0) > 0
                                 and d["lake_objects"] > 0
                                 for d in json_lines(err_path, "dashboard")),
                     "the alerter to consume and the archiver to write", proc, DURATION_S)
            for name in ("alerter", "archiver"):
                victim = child_pid(proc.pid, name)
                assert victim is not None
                os.kill(victim, signal.SIGKILL)
            out, _ = proc.communicate(timeout=DURATION_S + 90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    stderr = err_path.read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert len(json_lines(err_path, "topic_ready")) == len(DOCUMENTED_TOPICS)
    last = json_lines(err_path, "run_stopped")[-1]
    assert last["exit_code"] == 0
    daemons = last["daemons"]
    assert list(daemons) == [*DEFAULT_DAEMONS, "generator"]
    assert all(d["state"] == "up" for d in daemons.values())
    killed = ("alerter", "archiver")
    assert [daemons[n]["restarts"] for n in killed] == [1, 1]
    assert {d["restarts"] for n, d in daemons.items() if n not in killed} == {0}
    for name in killed:
        assert any(f"{name} killed by SIGKILL" in e for e in last["restart_events"])
    assert daemons["archiver"]["consumed"] > 0 and last["lake_rows"] > 0
    assert last["lake_bytes"] > 0
    assert last["aggregate_windows"] + last["open_windows"] > 0  # the aggregates
    # No data lost, none twice: the lake holds each offset below the archiver's commit once.
    ends = committed(kafka.bootstrap, "trailpipe-archiver", "audit.events.v1", 2)
    coordinates = lake_coordinates(tmp_path / "lake")
    assert sorted(coordinates) == [(p, o) for p in sorted(ends) for o in range(max(ends[p], 0))]
    assert last["alerts"] > 0 and last["latest_alerts"]  # the titles of the newest alerts
    assert daemons["generator"]["outputs"] > 0 and daemons["generator"]["consumed"] == 0
    # Each child logged to its own file; the terminal-less run logged JSON, not the children.
    for name in daemons:
        assert (tmp_path / "var" / "run-logs" / f"{name}.log").stat().st_size > 0
    assert '"daemon": "alerter"' not in stderr
    assert "alerter killed by SIGKILL" in out and "restarts 1" in out
    assert "trailpipe lake query --lake" in out and "report --lake" in out
    assert "lake validate --lake" in out and "--public-key var/run-keys/digest-demo.key.pub" in out
    assert "  alert: " in out
    alerts = [decode_alert(m.value() or b"")
              for m in read_all(kafka.bootstrap, "audit.alerts.v1")]
    assert any(a["severity"] in ("high", "critical") for a in alerts), alerts[:3]
    mirrored = [json.loads(m.value() or b"{}")
                for m in read_all(kafka.bootstrap, "audit.events.json.v1")]
    assert mirrored and all(r["eventID"] and r["eventTime"] for r in mirrored)


@pytest.mark.usefixtures("no_documented_topics")
def test_ctrl_c_stops_a_run_without_generator_cleanly(kafka: Any, tmp_path: Path,
                                                      own_key: dict[str, str]) -> None:
    err_path = tmp_path / "stderr.txt"
    env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json", "TRAILPIPE_TOPICS__PARTITIONS": "1",
           **own_key}
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli.app", "run", "--bootstrap", kafka.bootstrap,
             "--no-generator", "--lake", f"file://{tmp_path}/lake"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
        try:
            # Every daemon answers its /metrics: all are up and serving.
            wait_for(lambda: any(all("consumed" in d for d in line["daemons"].values())
                                 for line in json_lines(err_path, "dashboard")),
                     "every daemon's metrics", proc, 90)
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
            out, _ = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    stderr = err_path.read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert "stop_requested" in stderr
    stopped = json_lines(err_path, "child_stopped")
    assert sorted((e["child"], e["returncode"]) for e in stopped) == sorted(
        (name, 0) for name in DEFAULT_DAEMONS)  # each flushed on SIGTERM, none killed
    assert list(json_lines(err_path, "run_stopped")[-1]["daemons"]) == list(DEFAULT_DAEMONS)
    assert "(clean)" in out and "generator" not in out


@pytest.mark.usefixtures("no_documented_topics")
def test_on_a_terminal_the_dashboard_is_all_it_shows(kafka: Any, tmp_path: Path,
                                                     own_key: dict[str, str]) -> None:
    script = shutil.which("script")
    if script is None:
        pytest.skip("LOUD SKIP: util-linux `script` (a pseudo-terminal for the run) is missing")
    command = shlex.join([sys.executable, "-m", "pipeline.cli.app", "run", "--bootstrap",
                          kafka.bootstrap, "--no-generator", "--duration", "12", "--lake",
                          f"file://{tmp_path}/lake"])
    env = {**os.environ, "TRAILPIPE_TOPICS__PARTITIONS": "1", "COLUMNS": "160", **own_key}
    env.pop("TRAILPIPE_LOG__FORMAT", None)
    result = subprocess.run([script, "-qefc", command, "/dev/null"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    screen = result.stdout
    assert "trailpipe run: up" in screen and "DLQ" in screen
    assert f"bootstrap {kafka.bootstrap} | lake file://{tmp_path}/lake" in screen
    assert "(clean)" in screen and "lake query" in screen
    # No log line, no config dump: those went to the supervisor's log file.
    assert "topic_ready" not in screen and "child_started" not in screen
    assert "config_loaded" not in screen and "'kafka':" not in screen
    supervisor_log = (tmp_path / "var" / "run-logs" / "supervisor.log").read_text()
    assert '"event": "topic_ready"' in supervisor_log
    assert '"event": "child_started"' in supervisor_log
