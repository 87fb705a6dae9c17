"""``trailpipe run``'s wiring without processes: what each child gets in its environment and
the command a user is told to paste."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.cli import run
from pipeline.config import load_config


def test_children_get_the_resolved_bootstrap_the_flags_json_logs_and_the_run_grace() -> None:
    cfg = load_config(None, env={})
    env = run._child_env(cfg, "127.0.0.1:9092", {"kafka.bootstrap": None,
                                                 "storage.lake": "s3://b/lake",
                                                 "storage.s3_endpoint": None,
                                                 "generator.rate_per_s": 250.0})
    assert env == {"TRAILPIPE_KAFKA__BOOTSTRAP": "127.0.0.1:9092",
                   "TRAILPIPE_LOG__FORMAT": "json",
                   "TRAILPIPE_STORAGE__LAKE": "s3://b/lake",
                   "TRAILPIPE_GENERATOR__RATE_PER_S": "250.0",
                   "TRAILPIPE_AGGREGATOR__GRACE_MS": str(run.RUN_GRACE_MS)}
    # The names are real settings: a child loading its config from them gets the values.
    child = load_config(None, env=env)
    assert (child.kafka.bootstrap, child.storage.lake, child.generator.rate_per_s,
            child.aggregator.grace_ms, child.log.format) == \
        ("127.0.0.1:9092", "s3://b/lake", 250.0, run.RUN_GRACE_MS, "json")


def test_a_configured_aggregator_grace_is_left_alone(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[aggregator]\ngrace_ms = 5000\n")
    env = run._child_env(load_config(toml, env={}), "b:9092", {})
    assert "TRAILPIPE_AGGREGATOR__GRACE_MS" not in env


def test_the_pasteable_command_is_the_console_script_next_to_the_interpreter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / ".venv" / "bin"
    bindir.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.chdir(tmp_path)
    assert run._trailpipe_command().endswith("-m pipeline.cli.app")  # no script: python -m
    (bindir / "trailpipe").touch()
    assert run._trailpipe_command() == ".venv/bin/trailpipe"
    monkeypatch.chdir(tmp_path / ".venv")
    assert run._trailpipe_command() == "bin/trailpipe"
