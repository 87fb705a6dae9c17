"""TLS material of a dev cluster (``up(..., tls=True)``), kept in ``<state_dir>/tls/``.

- ``ca.pem`` / ``ca.key`` (0600): the cluster's CA, made once with :mod:`pipeline.certs` and
  kept across ``down`` (also ``down --purge``), so clients configured with ``ca.pem`` and
  certificates issued by ``siem subscribe --auth mtls`` stay valid;
- ``broker.pem`` (0600): the brokers' PEM keystore, private key then certificate, for
  ``127.0.0.1`` and ``localhost`` (what clients' hostname verification checks);
- ``admin.pem`` / ``admin.key`` (0600): a client certificate with subject ``CN=admin``, which
  the broker maps to ``User:admin`` (the super-user) on the SSL listener.

Missing files are (re)made at ``up``; a new CA also re-issues the broker and admin certificates.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.certs import CertificateAuthority, write_secret
from pipeline.dev.model import ADMIN_USER, HOST

TLS_DIR = "tls"
CA_CERT = "ca.pem"
CA_KEY = "ca.key"
BROKER_KEYSTORE = "broker.pem"
ADMIN_CERT = "admin.pem"
ADMIN_KEY = "admin.key"
CA_DAYS = 3650
LEAF_DAYS = 825
BROKER_HOSTS = [HOST, "localhost"]


def tls_dir(state_dir: Path) -> Path:
    """Directory holding the cluster's CA, broker keystore and admin client certificate."""
    return state_dir / TLS_DIR


def _ca(tdir: Path) -> tuple[CertificateAuthority, bool]:
    """The kept CA, or a new one (saved); the flag says whether it is new."""
    cert, key = tdir / CA_CERT, tdir / CA_KEY
    if cert.is_file() and key.is_file():
        return CertificateAuthority.load(cert, key), False
    ca = CertificateAuthority.create("trailpipe dev CA", days=CA_DAYS)
    ca.save(cert, key)
    return ca, True


def ensure_material(state_dir: Path) -> Path:
    """Make whatever TLS file of ``tls/`` is missing (see the module docstring) and return the
    directory. Raises pipeline.certs.CertificateError if a kept CA cannot be read."""
    tdir = tls_dir(state_dir)
    ca, new_ca = _ca(tdir)
    keystore = tdir / BROKER_KEYSTORE
    if new_ca or not keystore.is_file():
        key_pem, cert_pem = ca.issue_server("trailpipe dev broker", BROKER_HOSTS, LEAF_DAYS)
        write_secret(keystore, key_pem + cert_pem)
    admin_cert, admin_key = tdir / ADMIN_CERT, tdir / ADMIN_KEY
    if new_ca or not (admin_cert.is_file() and admin_key.is_file()):
        key_pem, cert_pem = ca.issue_client(ADMIN_USER, LEAF_DAYS)
        write_secret(admin_key, key_pem)
        write_secret(admin_cert, cert_pem)
    return tdir
