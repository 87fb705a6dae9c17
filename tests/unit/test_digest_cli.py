"""``lake validate|keygen|digester`` usage errors exit 2 with a helpful line. No services."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli.lake import app
from pipeline.config import LogConfig
from pipeline.logs import configure_logging


@pytest.fixture
def cli(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("TRAILPIPE_"):
            monkeypatch.delenv(name)

    def invoke(*args: str):
        try:
            return CliRunner().invoke(app, list(args))
        finally:
            configure_logging(LogConfig(format="console"))
    return invoke


def test_validate_needs_a_trusted_key(cli, tmp_path):
    result = cli("validate", "--lake", f"file://{tmp_path}")
    assert result.exit_code == 2 and "no trusted public key" in result.output


def test_validate_rejects_bad_times_and_formats(cli, tmp_path):
    cli("keygen", "--out", str(tmp_path / "k.pem"))
    pub = str(tmp_path / "k.pem.pub")
    result = cli("validate", "--lake", f"file://{tmp_path}", "--public-key", pub,
                 "--from", "yesterday")
    assert result.exit_code == 2 and "not an ISO 8601 time" in result.output
    result = cli("validate", "--lake", f"file://{tmp_path}", "--public-key", pub,
                 "--format", "xml")
    assert result.exit_code == 2
    result = cli("validate", "--lake", f"file://{tmp_path}", "--public-key", pub)
    assert result.exit_code == 0 and result.stdout.startswith("OK: 0 failure(s)")


def test_keygen_refuses_to_overwrite(cli, tmp_path):
    assert cli("keygen", "--out", str(tmp_path / "k.pem")).exit_code == 0
    result = cli("keygen", "--out", str(tmp_path / "k.pem"))
    assert result.exit_code == 1 and "--force" in result.output


def test_digester_needs_a_private_key(cli, tmp_path):
    result = cli("digester", "--lake", f"file://{tmp_path}", "--bootstrap", "127.0.0.1:1")
    assert result.exit_code == 2 and "digest.private_key is not configured" in result.output
