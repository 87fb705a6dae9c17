"""Ed25519 signing keys for the digest chain: load, generate, fingerprint.

Keys are PEM: the private key as unencrypted PKCS#8 (``-----BEGIN PRIVATE KEY-----``), the
public key as SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``). Wherever a key is
configured, the value is either the PEM text itself or the path of a PEM file. The
fingerprint of a key is the lowercase hex SHA-256 of the 32 raw public key bytes.

Errors: :class:`SigningKeyError` (missing file, not PEM, not an Ed25519 key).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.logs import get_logger

log = get_logger("pipeline.lake.keys")
PEM_MARK = "-----BEGIN"


class SigningKeyError(ValueError):
    """A key could not be loaded or written; the message says which and why."""


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw 32-byte public key (the digest's ``public_key_fingerprint``)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _pem_bytes(value: str, what: str) -> tuple[bytes, str]:
    """The PEM bytes of ``value`` (PEM text, or a path to read) and a label for errors."""
    if value.lstrip().startswith(PEM_MARK):
        return value.strip().encode() + b"\n", f"inline {what}"
    path = Path(value).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if what == "private key" and path.stat().st_mode & 0o077:
        log.warning("private_key_file_too_open", path=str(path),
                    mode=oct(path.stat().st_mode & 0o777), hint="chmod 600")
    return data, str(path)


def load_private_key(value: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``value`` (PEM text or a path). Raises SigningKeyError."""
    data, label = _pem_bytes(value, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{label}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{label}: not an Ed25519 key ({type(key).__name__})")
    return key


def load_public_key(value: str) -> Ed25519PublicKey:
    """The Ed25519 public key in ``value`` (PEM text or a path). A private key PEM is accepted
    too (its public half is used). Raises SigningKeyError."""
    data, label = _pem_bytes(value, "public key")
    if b"PRIVATE KEY" in data:
        return load_private_key(value).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{label}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{label}: not an Ed25519 key ({type(key).__name__})")
    return key


def trusted_keys(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """Public keys by fingerprint, as the validator looks them up."""
    return {fingerprint(k): k for k in keys}


def configured_public_keys(trusted_public_keys: Iterable[str], private_key: str | None
                           ) -> list[Ed25519PublicKey]:
    """The keys ``lake validate`` trusts by default: each of ``[digest] trusted_public_keys``
    and the public half of ``private_key`` (when configured). Raises SigningKeyError."""
    keys = [load_public_key(v) for v in trusted_public_keys]
    if private_key is not None:
        keys.append(load_public_key(private_key))
    return keys


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_keypair(out: Path, *, force: bool = False) -> tuple[Path, Path, str]:
    """Write a new private key to ``out`` (mode 0600, created exclusively unless ``force``)
    and its public key to ``out`` + ``.pub`` (0644). Returns (private path, public path,
    fingerprint). Raises SigningKeyError when a file exists (without ``force``) or cannot be
    written."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pub_path = out.with_name(out.name + ".pub")
    _write(out, private, 0o600, force)
    _write(pub_path, public_pem(key.public_key()), 0o644, force)
    return out, pub_path, fingerprint(key.public_key())


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, mode)
    except FileExistsError as exc:
        raise SigningKeyError(f"{path} exists; pass --force to replace it") from exc
    except OSError as exc:
        raise SigningKeyError(f"cannot write {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # O_CREAT's mode is masked by the umask, and ignored for existing files
