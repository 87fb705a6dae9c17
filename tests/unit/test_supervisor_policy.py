"""The supervisor's pure parts: the backoff schedule, its reset after a stable run, the restart
events, the ``[run]`` section and the children ``trailpipe run`` would start."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config import ConfigError, load_config
from pipeline.supervisor.children import run_children
from pipeline.supervisor.config import RunConfig
from pipeline.supervisor.policy import Backoff, RestartTracker, exit_status, tracker_for


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base_ms=500, max_ms=5_000)
    assert [backoff.delay_ms(n) for n in range(1, 8)] == [500, 1_000, 2_000, 4_000, 5_000,
                                                         5_000, 5_000]
    assert backoff.delay_ms(10_000) == 5_000  # a long crash loop stays at the cap
    with pytest.raises(ValueError):
        backoff.delay_ms(0)


def crash_loop(tracker: RestartTracker, uptimes_ms: list[int]) -> list[int | None]:
    """Start, run ``uptime``, crash (exit 1), wait the delay, restart; the delays asked for."""
    now_ms, delays = 0, []
    tracker.started(now_ms)
    for uptime_ms in uptimes_ms:
        now_ms += uptime_ms
        event = tracker.exited(1, now_ms)
        assert event.uptime_ms == uptime_ms
        delays.append(event.next_delay_ms)
        assert event.next_delay_ms is not None
        assert not tracker.due(now_ms + event.next_delay_ms - 1)
        now_ms += event.next_delay_ms
        assert tracker.due(now_ms)
        tracker.started(now_ms)
        assert not tracker.due(now_ms)
    return delays


def test_consecutive_crashes_grow_the_delay_and_a_stable_run_resets_it() -> None:
    tracker = RestartTracker("archiver", Backoff(100, 1_000), stable_after_ms=10_000)
    # Four quick crashes, one run past stable_after_ms, then two more quick crashes.
    delays = crash_loop(tracker, [50, 50, 50, 50, 10_000, 50, 50, 50, 50, 50])
    assert delays == [100, 200, 400, 800, 100, 200, 400, 800, 1_000, 1_000]


def test_the_event_names_the_exit_code_or_the_signal() -> None:
    tracker = RestartTracker("mirror", Backoff(1_000, 60_000), stable_after_ms=60_000)
    tracker.started(1_000)
    killed = tracker.exited(-signal.SIGKILL, 3_500)
    assert (killed.name, killed.exit_code, killed.signal, killed.attempt, killed.next_delay_ms,
            killed.uptime_ms, killed.at_ms) == ("mirror", None, "SIGKILL", 1, 1_000, 2_500, 3_500)
    assert killed.describe() == "mirror killed by SIGKILL after 2.5 s; restart 1 in 1.0 s"
    tracker.started(4_500)
    crashed = tracker.exited(1, 4_600)
    assert (crashed.exit_code, crashed.signal, crashed.attempt, crashed.next_delay_ms) == \
        (1, None, 2, 2_000)
    assert crashed.describe() == "mirror exited 1 after 0.1 s; restart 2 in 2.0 s"


def test_exit_code_2_bad_config_is_reported_and_not_restarted() -> None:
    tracker = RestartTracker("notifier", Backoff(1_000, 60_000), stable_after_ms=60_000)
    tracker.started(0)
    event = tracker.exited(2, 300)
    assert (event.exit_code, event.restarting, event.next_delay_ms) == (2, False, None)
    assert "not restarted" in event.describe()
    assert not tracker.due(10**12)


def test_an_exit_without_a_start_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        RestartTracker("x", Backoff(1, 1), 1).exited(1, 0)


def test_exit_status_decodes_popen_returncodes() -> None:
    assert exit_status(0) == (0, None)
    assert exit_status(3) == (3, None)
    assert exit_status(-signal.SIGTERM) == (None, "SIGTERM")
    assert exit_status(-200) == (None, "signal 200")


def test_run_section_defaults_and_the_tracker_it_builds() -> None:
    cfg = RunConfig()
    assert cfg.daemons == ["archiver", "digester", "alerter", "notifier", "aggregator", "mirror"]
    assert cfg.generator is True
    tracker = tracker_for("a", RunConfig(restart_backoff_ms=10, restart_backoff_max_ms=30,
                                         stable_after_ms=1_000))
    assert crash_loop(tracker, [1, 1, 1, 1]) == [10, 20, 30, 30]


def test_run_section_accepts_a_comma_list_and_rejects_unknown_or_repeated_daemons() -> None:
    assert RunConfig.model_validate({"daemons": "archiver, mirror"}).daemons == ["archiver",
                                                                                 "mirror"]
    with pytest.raises(ValidationError, match="unknown daemon"):
        RunConfig(daemons=["archiver", "archivr"])
    with pytest.raises(ValidationError, match="listed twice"):
        RunConfig(daemons=["mirror", "mirror"])
    with pytest.raises(ValidationError, match="at least restart_backoff_ms"):
        RunConfig(restart_backoff_ms=5_000, restart_backoff_max_ms=1_000)
    with pytest.raises(ValidationError):
        RunConfig.model_validate({"deamons": ["archiver"]})


def test_run_children_one_consume_each_then_the_generator_with_their_ports(tmp_path: Path) -> None:
    cfg = RunConfig(daemons=["archiver", "alerter"])
    config = tmp_path / "trailpipe.toml"
    children = run_children(cfg, log_dir=tmp_path / "logs", config_path=config,
                            env={"TRAILPIPE_KAFKA__BOOTSTRAP": "h:9092"}, metrics_port_base=9464)
    assert [c.name for c in children] == ["archiver", "alerter", "generator"]
    assert children[0].argv == (sys.executable, "-m", "pipeline.cli.app", "consume", "archiver",
                                "--config", str(config))
    assert children[2].argv[3:5] == ("produce", "generator")
    assert [c.env["TRAILPIPE_METRICS__PORT"] for c in children] == ["9464", "9465", "9466"]
    assert all(c.env["TRAILPIPE_KAFKA__BOOTSTRAP"] == "h:9092" for c in children)
    assert [c.log_path for c in children] == [tmp_path / "logs" / f"{n}.log"
                                              for n in ("archiver", "alerter", "generator")]


def test_run_children_without_generator_ports_or_config(tmp_path: Path) -> None:
    children = run_children(RunConfig(daemons=["mirror"]), log_dir=tmp_path, generator=False)
    assert [(c.name, c.argv[3:], dict(c.env)) for c in children] == [
        ("mirror", ("consume", "mirror"), {})]


def test_a_run_section_in_the_config_tree_when_wired() -> None:
    # Until the lead adds `run: RunConfig` to pipeline.config.Config, [run] is an unknown key.
    try:
        cfg = load_config(env={}, overrides={"run.daemons": "archiver"})
    except ConfigError as exc:
        pytest.skip(f"[run] is not wired into pipeline.config yet: {exc}")
    assert cfg.run.daemons == ["archiver"]  # type: ignore[attr-defined]
