"""A small X.509 certificate authority (``cryptography``) for Kafka TLS and mutual TLS.

Used by ``trailpipe dev up --tls`` (a CA and a broker certificate for the dev cluster) and by
``siem subscribe --auth mtls`` (a client certificate per SIEM, signed by the cluster's CA). In
production the operator brings the CA: :meth:`CertificateAuthority.load` reads its PEM files.

Keys are RSA 2048 and signatures SHA-256: the combination every client we must serve accepts
(librdkafka 2.0.2 in Debian's kcat and rsyslog-kafka, Java 17's JSSE, OpenSSL 3). Private keys
are written unencrypted in PKCS#8 PEM, only ever through :func:`write_secret` (mode 0600, atomic).
A client certificate's subject is exactly ``CN=<name>``; the broker's
``ssl.principal.mapping.rules`` turn it into ``User:<name>``, the principal the ACLs name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_SIZE_BITS = 2048
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences between hosts


class CertificateError(ValueError):
    """A CA file is missing, unreadable, or its key does not match its certificate."""


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (0600 from creation, never wider)
    and atomically (temp file in the same directory, fsync, rename): a reader sees the old
    content or the new, never a part. Parent directories are created (mode 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE_BITS)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    """IP literals become IP SANs, everything else DNS SANs."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class CertificateAuthority:
    """A CA certificate with its private key; issues server and client certificates."""

    def __init__(self, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        """Pair ``cert`` with ``key``; raise CertificateError if the key is not the cert's."""
        if _spki(cert.public_key()) != _spki(key.public_key()):
            raise CertificateError("the CA key does not belong to the CA certificate")
        self.cert = cert
        self._key = key

    @classmethod
    def create(cls, common_name: str, days: int) -> CertificateAuthority:
        """A new self-signed CA (``CN=<common_name>``, basicConstraints CA:true pathlen 0,
        keyCertSign + cRLSign) valid for ``days`` days from now."""
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        """Read a CA from PEM files (an RSA key, unencrypted); raise CertificateError if a file
        is missing or unreadable, the key is not RSA, or it does not match the certificate."""
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise CertificateError(f"cannot load CA from {cert_path} / {key_path}: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CertificateError(f"{key_path} holds a {type(key).__name__}, not an RSA key")
        return cls(cert, key)

    def save(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate (PEM, mode 0644) and the key (PKCS#8 PEM, mode 0600), each
        atomically."""
        write_secret(key_path, _key_pem(self._key))
        write_secret(cert_path, self.cert_pem)
        cert_path.chmod(0o644)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate in PEM: what clients and brokers put in their trust store."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_server(self, common_name: str, hosts: list[str], days: int) -> tuple[bytes, bytes]:
        """``(key_pem, cert_pem)`` for a TLS server known by ``hosts`` (IPs and DNS names in
        the subjectAltName, which is what clients verify), EKU serverAuth (+ clientAuth, so a
        broker can also present it to other brokers)."""
        eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        return self._issue(common_name, days, eku, _san(hosts) if hosts else None)

    def issue_client(self, common_name: str, days: int) -> tuple[bytes, bytes]:
        """``(key_pem, cert_pem)`` for a TLS client whose subject is exactly
        ``CN=<common_name>``, EKU clientAuth; the key is unencrypted PKCS#8 PEM."""
        return self._issue(common_name, days, [ExtendedKeyUsageOID.CLIENT_AUTH], None)

    def _issue(self, common_name: str, days: int, eku: list[x509.ObjectIdentifier],
               san: x509.SubjectAlternativeName | None) -> tuple[bytes, bytes]:
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM)
