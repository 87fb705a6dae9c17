"""A subscription's secrets on disk: ``<[siem] secrets_dir>/<name>/`` (mode 0700) holding the
SCRAM ``password`` or the mTLS ``client.key`` + ``client.pem``, the CA file and the client
configs, every file mode 0600 (:func:`pipeline.certs.write_secret`). Nothing here logs or
returns a secret to print.

Re-subscribing keeps an existing password or key/certificate; only ``rotate=True`` replaces it.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.certs import CertificateAuthority, write_secret
from pipeline.siem.clients import (
    CA_FILE,
    CERT_FILE,
    KEY_FILE,
    PASSWORD_FILE,
    ClientSpec,
    render_all,
)

PASSWORD_BYTES = 24
DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class Credential:
    """The secret a client presents: a password (scram) or a PEM key and its certificate."""

    secret: str
    cert_pem: str = ""
    new: bool = False


def subscription_dir(secrets_dir: Path, name: str) -> Path:
    """The directory of subscription ``name``, mode 0700 (``secrets_dir`` is created 0700 when
    missing; an existing one is left as it is)."""
    secrets_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path = secrets_dir / name
    path.mkdir(mode=DIR_MODE, exist_ok=True)
    path.chmod(DIR_MODE)  # also when it existed: mkdir's mode does not apply then
    return path


def scram_password(directory: Path, *, rotate: bool) -> Credential:
    """The password in ``directory/password``, or (none there, or ``rotate``) a new one
    written there."""
    path = directory / PASSWORD_FILE
    if path.exists() and not rotate:
        return Credential(path.read_text(encoding="utf-8").strip())
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    write_secret(path, password.encode())
    return Credential(password, new=True)


def client_certificate(directory: Path, name: str, ca: CertificateAuthority | None, days: int,
                       *, rotate: bool) -> Credential:
    """The key and certificate in ``directory`` or (either missing, or ``rotate``) a new key
    and a certificate for ``CN=<name>`` signed by ``ca`` (needed only then: ValueError when
    it is None)."""
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    if key_path.exists() and cert_path.exists() and not rotate:
        return Credential(key_path.read_text(encoding="utf-8"),
                          cert_path.read_text(encoding="utf-8"))
    if ca is None:
        raise ValueError("no CA to sign the client certificate")
    key_pem, cert_pem = ca.issue_client(name, days)
    write_secret(key_path, key_pem)
    write_secret(cert_path, cert_pem)
    return Credential(key_pem.decode(), cert_pem.decode(), new=True)


def drop_files(directory: Path, names: tuple[str, ...]) -> list[Path]:
    """Delete the files ``names`` of ``directory`` that exist (the other auth's secrets);
    returns the deleted ones."""
    gone = [directory / n for n in names if (directory / n).exists()]
    for path in gone:
        path.unlink()
    return gone


def write_client_files(spec: ClientSpec, ca_pem: bytes | None) -> list[Path]:
    """Write ``ca.pem`` (when given) and every client config of ``spec`` into its directory;
    returns the paths written, CA first."""
    out = []
    if ca_pem is not None:
        out.append(spec.secrets_dir / CA_FILE)
        write_secret(out[-1], ca_pem)
    for file, text in render_all(spec).items():
        out.append(spec.secrets_dir / file)
        write_secret(out[-1], text.encode())
    return out


def remove_dir(secrets_dir: Path, name: str) -> bool:
    """Delete subscription ``name``'s directory; False when there was none."""
    path = secrets_dir / name
    if not path.exists():
        return False
    shutil.rmtree(path)
    return True
