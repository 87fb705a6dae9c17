"""A subscription's secrets on disk: mode 0700 directory, 0600 files, kept across re-runs,
replaced only on rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from pipeline.certs import CertificateAuthority
from pipeline.siem.clients import ClientSpec
from pipeline.siem.credentials import (
    client_certificate,
    drop_files,
    remove_dir,
    scram_password,
    subscription_dir,
    write_client_files,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_password_is_kept_until_rotated(tmp_path: Path) -> None:
    directory = subscription_dir(tmp_path / "siem", "splunk")
    assert _mode(tmp_path / "siem") == _mode(directory) == 0o700
    first = scram_password(directory, rotate=False)
    assert first.new and len(first.secret) >= 32
    assert _mode(directory / "password") == 0o600
    again = scram_password(directory, rotate=False)
    assert (again.secret, again.new) == (first.secret, False)
    rotated = scram_password(directory, rotate=True)
    assert rotated.new and rotated.secret != first.secret
    assert (directory / "password").read_text() == rotated.secret


def test_certificate_is_issued_once_for_the_name_and_replaced_on_rotation(
        tmp_path: Path) -> None:
    ca = CertificateAuthority.create("test-ca", 1)
    directory = subscription_dir(tmp_path, "elastic")
    first = client_certificate(directory, "elastic", ca, 30, rotate=False)
    cert = x509.load_pem_x509_certificate(first.cert_pem.encode())
    assert cert.subject.rfc4514_string() == "CN=elastic" and cert.issuer == ca.cert.subject
    assert {_mode(directory / f) for f in ("client.key", "client.pem")} == {0o600}
    kept = client_certificate(directory, "elastic", None, 30, rotate=False)
    assert (kept.secret, kept.cert_pem, kept.new) == (first.secret, first.cert_pem, False)
    rotated = client_certificate(directory, "elastic", ca, 30, rotate=True)
    assert rotated.new and rotated.secret != first.secret
    with pytest.raises(ValueError, match="no CA"):
        client_certificate(directory, "elastic", None, 30, rotate=True)


def test_client_files_are_secret_and_the_directory_goes_on_revoke(tmp_path: Path) -> None:
    directory = subscription_dir(tmp_path, "g")
    spec = ClientSpec("g", "scram", "SASL_SSL", "h:1", ("t",), directory, "pw")
    written = write_client_files(spec, b"CA PEM")
    assert [p.name for p in written] == ["ca.pem", "librdkafka.conf", "client.properties",
                                         "splunk-connect-for-kafka.properties",
                                         "elastic-kafka-input.yml"]
    assert {_mode(p) for p in written} == {0o600}
    assert (directory / "ca.pem").read_bytes() == b"CA PEM"
    assert drop_files(directory, ("ca.pem", "client.key")) == [directory / "ca.pem"]
    assert remove_dir(tmp_path, "g") and not directory.exists()
    assert not remove_dir(tmp_path, "g")
