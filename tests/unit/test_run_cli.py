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
    flags = {"kafka.bootstrap": None, "storage.lake": "s3://b/lake",
             "storage.s3_endpoint": None, "generator.rate_per_s": 250.0}
    env = run._child_env(cfg, "127.0.0.1:9092", flags, demo=True)
    assert env == {"TRAILPIPE_KAFKA__BOOTSTRAP": "127.0.0.1:9092",
                   "TRAILPIPE_LOG__FORMAT": "json",
                   "TRAILPIPE_STORAGE__LAKE": "s3://b/lake",
                   "TRAILPIPE_GENERATOR__RATE_PER_S": "250.0",
                   "TRAILPIPE_AGGREGATOR__GRACE_MS": str(run.RUN_GRACE_MS),
                   "TRAILPIPE_ARCHIVER__MAX_AGE_MS": str(run.DEMO_OBJECT_AGE_MS)}
    # production (no generator): CloudTrail arrives minutes late; the defaults stay
    production = run._child_env(cfg, "127.0.0.1:9092", flags)
    demo_only = {"TRAILPIPE_AGGREGATOR__GRACE_MS", "TRAILPIPE_ARCHIVER__MAX_AGE_MS"}
    assert not demo_only & set(production)
    # The names are real settings: a child loading its config from them gets the values.
    child = load_config(None, env=env)
    assert (child.kafka.bootstrap, child.storage.lake, child.generator.rate_per_s,
            child.aggregator.grace_ms, child.log.format) == \
        ("127.0.0.1:9092", "s3://b/lake", 250.0, run.RUN_GRACE_MS, "json")


def test_a_configured_aggregator_grace_is_left_alone(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[aggregator]\ngrace_ms = 5000\n")
    env = run._child_env(load_config(toml, env={}), "b:9092", {}, demo=True)
    assert "TRAILPIPE_AGGREGATOR__GRACE_MS" not in env


def test_a_demo_run_rolls_lake_objects_sooner_unless_configured(tmp_path: Path) -> None:
    cfg = load_config(None, env={})
    demo = run._child_env(cfg, "b:9092", {}, demo=True)
    assert load_config(None, env=demo).archiver.max_age_ms == run.DEMO_OBJECT_AGE_MS
    assert "TRAILPIPE_ARCHIVER__MAX_AGE_MS" not in run._child_env(cfg, "b:9092", {})
    toml = tmp_path / "c.toml"
    toml.write_text("[archiver]\nmax_age_ms = 30000\n")
    assert "TRAILPIPE_ARCHIVER__MAX_AGE_MS" not in run._child_env(
        load_config(toml, env={}), "b:9092", {}, demo=True)


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


def test_a_demo_run_signs_digests_with_a_demo_key_made_once(tmp_path: Path) -> None:
    from pipeline.lake.keys import load_private_key, load_public_key
    from pipeline.supervisor.children import digester_env

    key = tmp_path / "keys" / "demo.key"
    env = digester_env(load_config(None, env={}).digest, demo=True, key_path=key)
    assert env == {"TRAILPIPE_DIGEST__PRIVATE_KEY": str(key),
                   "TRAILPIPE_DIGEST__PERIOD_MS": "60000",
                   "TRAILPIPE_DIGEST__CLOSE_GRACE_MS": "5000",
                   "TRAILPIPE_DIGEST__STARTUP_SETTLE_MS": "5000"}
    first = key.read_bytes()
    digester_env(load_config(None, env={}).digest, demo=True, key_path=key)
    assert key.read_bytes() == first  # reused: digests of earlier runs stay verifiable
    assert load_public_key(f"{key}.pub") == load_private_key(str(key)).public_key()
    child = load_config(None, env=env)  # real setting names
    assert (child.digest.period_ms, child.digest.close_grace_ms,
            child.digest.startup_settle_ms) == (60_000, 5_000, 5_000)


def test_a_configured_key_is_used_and_production_without_one_is_refused(tmp_path: Path) -> None:
    from pipeline.supervisor.children import RunSetupError, digester_env

    toml = tmp_path / "c.toml"
    toml.write_text('[digest]\nprivate_key = "/etc/trailpipe/digest.key"\n')
    assert digester_env(load_config(toml, env={}).digest, demo=False) == {}
    with pytest.raises(RunSetupError, match=r"trailpipe lake keygen --out PATH"):
        digester_env(load_config(None, env={}).digest, demo=False, key_path=tmp_path / "k")
    assert not (tmp_path / "k").exists()


def test_the_pasted_commands_repeat_the_lake_flags_and_validate_with_the_demo_key() -> None:
    from datetime import UTC, datetime

    env_of = {"digester": {"TRAILPIPE_DIGEST__PRIVATE_KEY": "var/run-keys/digest-demo.key"}}
    lines = run._commands(".venv/bin/trailpipe", " --lake s3://b/l --s3-endpoint http://x",
                          datetime(2026, 1, 1, tzinfo=UTC), env_of, 1)
    assert lines[0].startswith("  .venv/bin/trailpipe lake query --lake s3://b/l --s3-endpoint")
    assert lines[1].startswith("  .venv/bin/trailpipe report --lake s3://b/l --s3-endpoint "
                               "http://x --from 2026-01-01T00:00:00Z --to ")
    assert lines[2] == ("  .venv/bin/trailpipe lake validate --lake s3://b/l --s3-endpoint "
                        "http://x --public-key var/run-keys/digest-demo.key.pub")
    assert len(run._commands("t", "", datetime.now(UTC), {}, 0)) == 2
    none_yet = run._commands("t", "", datetime.now(UTC), env_of, 0)[2]
    assert none_yet.startswith("  (no digest closed during this run")
    assert "lake validate" in none_yet


def test_a_production_run_with_the_digester_and_no_key_exits_2_before_starting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipeline.cli.app import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAILPIPE_DIGEST__PRIVATE_KEY", raising=False)
    result = CliRunner().invoke(app, ["run", "--no-generator", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert "[digest] private_key is not set" in result.output
    assert not (tmp_path / "var").exists()  # nothing started, no key made


def test_a_stop_timeout_shorter_than_the_daemons_grace_is_a_config_error() -> None:
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=r"run.stop_timeout_ms \(5000\) must exceed"):
        load_config(None, env={"TRAILPIPE_RUN__STOP_TIMEOUT_MS": "5000"})  # grace: 10 s
    load_config(None, env={"TRAILPIPE_RUN__STOP_TIMEOUT_MS": "5000",
                           "TRAILPIPE_RUNNER__SHUTDOWN_GRACE_S": "4"})
