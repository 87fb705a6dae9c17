"""pipeline.certs: the CA round trip, what issued certificates say, and secret file modes."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.certs import CertificateAuthority, CertificateError, write_secret


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("trailpipe test CA", days=2)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s key verifies ``cert``'s signature (raises on a bad signature)."""
    pub = issuer.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
               cert.signature_hash_algorithm)
    return cert.issuer == issuer.subject


def test_ca_save_load_round_trip(tmp_path: Path, ca: CertificateAuthority) -> None:
    cert_path, key_path = tmp_path / "tls" / "ca.pem", tmp_path / "tls" / "ca.key"
    ca.save(cert_path, key_path)
    assert _mode(key_path) == 0o600
    assert _mode(cert_path) == 0o644
    loaded = CertificateAuthority.load(cert_path, key_path)
    assert loaded.cert_pem == ca.cert_pem
    # The loaded key signs: a certificate it issues verifies against the original CA cert.
    _, cert_pem = loaded.issue_client("after-load", days=1)
    assert _signed_by(x509.load_pem_x509_certificate(cert_pem), ca.cert)
    assert not list(tmp_path.glob("tls/.*.tmp"))


def test_ca_is_a_ca(ca: CertificateAuthority) -> None:
    basic = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca
    assert _signed_by(ca.cert, ca.cert)


def test_client_cert_subject_eku_and_signature(ca: CertificateAuthority) -> None:
    key_pem, cert_pem = ca.issue_client("splunk", days=1)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.rfc4514_string() == "CN=splunk"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "splunk"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _signed_by(cert, ca.cert)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def test_server_cert_san_and_eku(ca: CertificateAuthority) -> None:
    _, cert_pem = ca.issue_server("broker", ["127.0.0.1", "localhost"], days=1)
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in list(eku)
    assert _signed_by(cert, ca.cert)


def test_other_ca_does_not_verify(ca: CertificateAuthority) -> None:
    other = CertificateAuthority.create("other CA", days=1)
    _, cert_pem = other.issue_client("mallory", days=1)
    with pytest.raises(InvalidSignature):
        _signed_by(x509.load_pem_x509_certificate(cert_pem), ca.cert)


def test_load_rejects_mismatched_key(tmp_path: Path, ca: CertificateAuthority) -> None:
    other = CertificateAuthority.create("other CA", days=1)
    ca.save(tmp_path / "ca.pem", tmp_path / "ca.key")
    other.save(tmp_path / "o.pem", tmp_path / "o.key")
    with pytest.raises(CertificateError, match="does not belong"):
        CertificateAuthority.load(tmp_path / "ca.pem", tmp_path / "o.key")
    with pytest.raises(CertificateError, match="cannot load"):
        CertificateAuthority.load(tmp_path / "missing.pem", tmp_path / "ca.key")


def test_write_secret_mode_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret.key"
    write_secret(path, b"one")
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    path.chmod(0o644)  # an existing wider file is replaced by a 0600 one
    write_secret(path, b"two")
    assert path.read_bytes() == b"two"
    assert _mode(path) == 0o600
