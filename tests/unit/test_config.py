"""Config layering and validation (pure, no I/O beyond tmp files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.kafka import base_client_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trailpipe.toml"
    path.write_text(text)
    return path


def test_defaults_are_valid_and_documented_units() -> None:
    cfg = load_config(env={})
    assert cfg.kafka.bootstrap is None
    assert cfg.runner.commit_interval_ms == 5_000
    assert cfg.storage.lake == "file://var/lake"


def test_layers_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nbootstrap = "file:1"\nclient_id = "from-file"\n'
                           '[runner]\nbatch_size = 10\n')
    env = {"TRAILPIPE_KAFKA__BOOTSTRAP": "env:2", "TRAILPIPE_RUNNER__POLL_TIMEOUT_MS": "77",
           "TRAILPIPE_TEST_BOOTSTRAP": "ignored: not a config variable"}
    cfg = load_config(path, env=env, overrides={"kafka.bootstrap": "flag:3", "storage.lake": None})
    assert cfg.kafka.bootstrap == "flag:3"  # flag beats env beats file
    assert cfg.kafka.client_id == "from-file"
    assert cfg.runner.batch_size == 10
    assert cfg.runner.poll_timeout_ms == 77  # env strings are coerced to the field's type
    assert cfg.storage.lake == "file://var/lake"  # an unset flag does not mask the default


def test_bad_file_lists_every_error_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nbootstrap = "h:1"\n[kafka.sasl]\nusername = "u"\n'
                           '[runner]\nbatch_size = "many"\nsurprise = 1\n'
                           '[nonsense]\nx = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    errors = info.value.errors
    assert "kafka.sasl.password: required value missing" in errors
    assert "runner.surprise: unknown key" in errors
    assert "nonsense: unknown key" in errors
    assert any(e.startswith("runner.batch_size:") and "integer" in e for e in errors)
    assert len(errors) == 4


def test_env_errors_are_reported_with_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[runner]\nbatch_size = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"TRAILPIPE_KAFKA__NOPE": "1"})
    assert {e.split(":")[0] for e in info.value.errors} == {"runner.batch_size", "kafka.nope"}


def test_sasl_protocol_requires_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"TRAILPIPE_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    assert "needs a [kafka.sasl] section" in info.value.errors[0]


def test_ssl_settings_reach_every_client_and_the_key_password_is_masked(
        tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nsecurity_protocol = "SSL"\n'
                           '[kafka.ssl]\nca_location = "/ca.pem"\n'
                           'certificate_location = "/c.pem"\nkey_location = "/c.key"\n'
                           'key_password = "k3y"\n')
    cfg = load_config(path, env={})
    conf = base_client_config(cfg.kafka, "127.0.0.1:9093")
    assert conf["security.protocol"] == "SSL"
    assert (conf["ssl.ca.location"], conf["ssl.certificate.location"],
            conf["ssl.key.location"], conf["ssl.key.password"]) == (
        "/ca.pem", "/c.pem", "/c.key", "k3y")
    assert conf["ssl.endpoint.identification.algorithm"] == "https"
    assert "k3y" not in str(cfg.masked())


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"TRAILPIPE_KAFKA__SSL__CERTIFICATE_LOCATION": "/c.pem"})
    assert "certificate_location and key_location go together" in info.value.errors[0]


def test_secrets_are_masked_in_logged_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\n'
                           '[kafka.sasl]\nusername = "admin"\npassword = "hunter2"\n')
    cfg = load_config(path, env={})
    assert cfg.kafka.sasl is not None
    assert cfg.kafka.sasl.password.get_secret_value() == "hunter2"
    assert "hunter2" not in str(cfg.masked())
    assert cfg.masked()["kafka"]["sasl"]["password"] == "**********"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[kafka\n"), env={})
    assert "not valid TOML" in info.value.errors[0]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml", env={})
    assert "config file not found" in info.value.errors[0]


def test_retry_budget_must_leave_room_for_polling() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"TRAILPIPE_RUNNER__FLUSH_RETRY_BUDGET_MS": "200000"})
    assert "max_poll_interval_ms" in info.value.errors[0]


@pytest.mark.parametrize("key", ["runner.dlq_topic", "producer.events_topic",
                                 "producer.dlq_topic", "archiver.topic",
                                 "archiver.deliveries_topic", "archiver.health_topic",
                                 "digest.deliveries_topic"])
def test_topic_names_are_set_only_in_the_topics_section(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={key: "x.y.v1"})
    assert info.value.errors == [f"{key}: unknown key"]


def test_one_encryption_setting_for_the_bucket_and_every_put() -> None:
    cfg = load_config(env={"TRAILPIPE_STORAGE__ENCRYPTION": "aws:kms",
                           "TRAILPIPE_STORAGE__KMS_KEY_ID": "alias/lake"})
    assert (cfg.storage.encryption, cfg.storage.kms_key_id) == ("aws:kms", "alias/lake")
    with pytest.raises(ConfigError) as info:
        load_config(env={"TRAILPIPE_STORAGE__KMS_KEY_ID": "alias/lake"})
    [error] = info.value.errors
    assert error.startswith("storage:") and 'kms_key_id needs encryption = "aws:kms"' in error


@pytest.mark.parametrize("key", ["archiver.sse", "archiver.kms_key_id", "archiver.storage_class",
                                 "lake.encryption", "lake.kms_key_id", "lake.storage_class"])
def test_encryption_and_storage_class_are_set_only_in_the_storage_section(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={key: "aws:kms"})
    assert info.value.errors == [f"{key}: unknown key"]
