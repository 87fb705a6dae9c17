"""Integration fixtures shared by the SIEM tests: one SASL + TLS dev cluster per session.

``siem_cluster`` is started on first use by a test that asks for it (tests that do not never pay
for it) and stopped at the end of the session. It is a separate cluster from the session's
plain one (``kafka``): SCRAM-SHA-512 on SASL_PLAINTEXT and SASL_SSL, mutual TLS on SSL,
StandardAuthorizer with ``User:admin`` as super-user (password in ``.sasl``; client certificate
``CN=admin`` in ``.tls``), and the CA in ``.tls.ca_location`` (its key beside it, ``ca.key``,
for tests that issue client certificates with :class:`pipeline.certs.CertificateAuthority`).
Tests sharing it must use unique topic, group and principal names and leave ACLs of principals
they did not create alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.dev import ClusterInfo, down, up


@pytest.fixture(scope="session")
def siem_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A running ``up(state_dir, sasl=True, tls=True)`` cluster for the whole session."""
    state_dir = tmp_path_factory.mktemp("siem-cluster")
    try:
        info = up(state_dir, sasl=True, tls=True)
        assert info.tls is not None and info.sasl is not None
        yield info
    finally:
        down(state_dir, purge=True)
