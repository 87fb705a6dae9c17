"""TLS on the dev cluster (``up(..., tls=True)``): trailpipe's own config reaches the SASL_SSL
and SSL listeners; the SSL listener requires a certificate from the cluster's CA and maps
``CN=<name>`` to ``User:<name>``; a client that does not trust the CA fails; Debian's kcat
(librdkafka 2.0.2) reads metadata with the admin client certificate.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from pipeline.certs import CertificateAuthority, write_secret
from pipeline.config import load_config
from pipeline.dev import ClusterInfo, TlsInfo, status
from pipeline.kafka import base_client_config, consumer_config, producer_config
from pipeline.topics_config import TOPIC_ROLES

pytestmark = pytest.mark.integration
KCAT = "/usr/bin/kcat"


def _tls(cluster: ClusterInfo) -> TlsInfo:
    assert cluster.tls is not None
    return cluster.tls


def _env(cluster: ClusterInfo, protocol: str) -> dict[str, str]:
    """``TRAILPIPE_KAFKA__*`` settings reaching ``protocol``'s listener as the admin."""
    tls = _tls(cluster)
    env = {"TRAILPIPE_KAFKA__SECURITY_PROTOCOL": protocol,
           "TRAILPIPE_KAFKA__SSL__CA_LOCATION": str(tls.ca_location)}
    if protocol == "SASL_SSL":
        assert cluster.sasl is not None
        env.update({"TRAILPIPE_KAFKA__BOOTSTRAP": tls.sasl_ssl_bootstrap,
                    "TRAILPIPE_KAFKA__SASL__USERNAME": cluster.sasl.username,
                    "TRAILPIPE_KAFKA__SASL__PASSWORD": cluster.sasl.password})
    else:
        env.update({"TRAILPIPE_KAFKA__BOOTSTRAP": tls.ssl_bootstrap,
                    "TRAILPIPE_KAFKA__SSL__CERTIFICATE_LOCATION": str(tls.admin_certificate),
                    "TRAILPIPE_KAFKA__SSL__KEY_LOCATION": str(tls.admin_key)})
    return env


def _client(cluster: ClusterInfo, protocol: str, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings built the way every trailpipe command builds them."""
    cfg = load_config(env=_env(cluster, protocol), overrides=overrides)
    assert cfg.kafka.bootstrap is not None
    return base_client_config(cfg.kafka, cfg.kafka.bootstrap)


def _refused(conf: dict[str, Any]) -> str:
    """Connect with ``conf``; assert no metadata arrives and return the client's errors."""
    errors: list[KafkaError] = []
    settings: dict[str, Any] = {**conf, "error_cb": errors.append}
    admin = AdminClient(settings)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=6)
    admin.poll(1)  # serves error_cb
    return "\n".join(e.str() for e in errors)


@pytest.fixture(scope="module")
def admin(siem_cluster: ClusterInfo) -> AdminClient:
    conf: dict[str, Any] = siem_cluster.ssl_client_config()
    return AdminClient(conf)


@pytest.fixture
def topic(admin: AdminClient) -> Iterator[str]:
    name = f"tls.{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def test_cluster_info_and_files(siem_cluster: ClusterInfo) -> None:
    tls = _tls(siem_cluster)
    assert siem_cluster.state_dir is not None
    again = status(siem_cluster.state_dir)
    assert again is not None and again.tls == tls
    shown = again.to_json_dict()["tls"]
    assert shown["ssl_bootstrap"] == tls.ssl_bootstrap
    assert shown["ca_location"] == str(tls.ca_location)
    for secret in (tls.ca_key, tls.admin_key, tls.ca_key.parent / "broker.pem"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    ports = {tls.ssl_bootstrap, tls.sasl_ssl_bootstrap, siem_cluster.bootstrap}
    assert len(ports) == 3


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL"])
def test_topics_create_over_tls(siem_cluster: ClusterInfo, admin: AdminClient,
                                protocol: str) -> None:
    """`trailpipe topics create` with only environment config, as the admin: SCRAM over TLS,
    or the CN=admin client certificate (a super-user only if the mapping gives User:admin)."""
    prefix = f"tls-cli-{uuid.uuid4().hex[:8]}"
    names = {role: f"{prefix}.{role}" for role in TOPIC_ROLES}
    env = {**os.environ, **_env(siem_cluster, protocol), "TRAILPIPE_LOG__FORMAT": "json",
           "TRAILPIPE_TOPICS__PARTITIONS": "1",
           **{f"TRAILPIPE_TOPICS__{role.upper()}": name for role, name in names.items()}}
    result = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "topics", "create"],
                            capture_output=True, text=True, env=env, timeout=120)
    try:
        assert result.returncode == 0, result.stderr
        assert sorted(result.stdout.split()) == sorted(["created"] * len(names)
                                                       + list(names.values()))
        assert set(names.values()) <= set(admin.list_topics(timeout=10).topics)
    finally:
        existing = set(names.values()) & set(admin.list_topics(timeout=10).topics)
        for future in admin.delete_topics(list(existing)).values():
            future.result(timeout=30)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL"])
def test_produce_and_consume_over_tls(siem_cluster: ClusterInfo, topic: str,
                                      protocol: str) -> None:
    base = _client(siem_cluster, protocol)
    assert base["security.protocol"] == protocol
    assert base["ssl.endpoint.identification.algorithm"] == "https"  # broker SAN is checked
    producer = Producer(producer_config(base, {}))
    value = f"over {protocol}".encode()
    producer.produce(topic, key=b"k", value=value)
    assert producer.flush(30) == 0
    consumer = Consumer(consumer_config(base, f"tls-{uuid.uuid4().hex[:8]}", {},
                                        read_committed=True))
    consumer.subscribe([topic])
    try:
        got: list[bytes | None] = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            got = [m.value() for m in consumer.consume(10, 1.0) if m.error() is None]
    finally:
        consumer.close()
    assert got == [value]


def test_ssl_listener_refuses_client_without_certificate(siem_cluster: ClusterInfo) -> None:
    conf = siem_cluster.ssl_client_config()
    del conf["ssl.certificate.location"], conf["ssl.key.location"]
    assert "certificate" in _refused(conf)  # the broker's TLS alert ("bad certificate")


def test_certificate_from_another_ca_is_refused(siem_cluster: ClusterInfo,
                                                tmp_path: Path) -> None:
    """A self-made CA's CN=admin certificate must not make anyone the admin."""
    rogue = CertificateAuthority.create("rogue CA", days=1)
    key_pem, cert_pem = rogue.issue_client("admin", days=1)
    write_secret(tmp_path / "rogue.key", key_pem)
    write_secret(tmp_path / "rogue.pem", cert_pem)
    conf = {**siem_cluster.ssl_client_config(), "ssl.key.location": str(tmp_path / "rogue.key"),
            "ssl.certificate.location": str(tmp_path / "rogue.pem")}
    assert "certificate" in _refused(conf)  # "unknown ca" / "bad certificate" from the broker


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL"])
def test_client_not_trusting_the_ca_fails(siem_cluster: ClusterInfo, tmp_path: Path,
                                          protocol: str) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(CertificateAuthority.create("some other CA", days=1).cert_pem)
    conf = _client(siem_cluster, protocol, **{"kafka.ssl.ca_location": str(other_ca)})
    assert "certificate verify failed" in _refused(conf)


def _can_produce(conf: dict[str, Any], topic: str) -> KafkaError | None:
    reports: list[KafkaError | None] = []
    producer = Producer({**conf, "message.timeout.ms": 10_000})
    producer.produce(topic, value=b"x", on_delivery=lambda err, _m: reports.append(err))
    producer.flush(15)
    assert reports, "no delivery report"
    return reports[0]


def test_certificate_subject_is_the_acl_principal(siem_cluster: ClusterInfo, admin: AdminClient,
                                                  topic: str, tmp_path: Path) -> None:
    """CN=<name> from the cluster's CA authenticates as User:<name>: denied without an ACL,
    allowed once User:<name> may WRITE the topic."""
    tls = _tls(siem_cluster)
    name = f"tls-probe-{uuid.uuid4().hex[:8]}"
    key_pem, cert_pem = CertificateAuthority.load(tls.ca_location, tls.ca_key).issue_client(
        name, days=1)
    write_secret(tmp_path / "c.key", key_pem)
    write_secret(tmp_path / "c.pem", cert_pem)
    conf = {**siem_cluster.ssl_client_config(), "ssl.key.location": str(tmp_path / "c.key"),
            "ssl.certificate.location": str(tmp_path / "c.pem")}
    denied = _can_produce(conf, topic)
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, denied
    acl = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, f"User:{name}",
                     "*", AclOperation.WRITE, AclPermissionType.ALLOW)
    admin.create_acls([acl])[acl].result(timeout=30)
    try:
        deadline = time.monotonic() + 30
        while (err := _can_produce(conf, topic)) is not None and time.monotonic() < deadline:
            assert err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        assert err is None, err
    finally:
        match = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL,
                                 f"User:{name}", "*", AclOperation.ANY, AclPermissionType.ANY)
        admin.delete_acls([match])[match].result(timeout=30)


def test_sasl_brokers_force_reauthentication(siem_cluster: ClusterInfo,
                                             admin: AdminClient) -> None:
    broker = ConfigResource(ConfigResource.Type.BROKER, str(siem_cluster.brokers[0].node_id))
    configs = admin.describe_configs([broker])[broker].result(timeout=30)
    assert int(configs["connections.max.reauth.ms"].value) > 0


def test_debian_kcat_lists_metadata_with_the_admin_certificate(siem_cluster: ClusterInfo,
                                                               topic: str) -> None:
    """librdkafka 2.0.2 accepts our RSA/SHA-256 certificates and PKCS#8 keys."""
    if not Path(KCAT).is_file():
        pytest.skip(f"{KCAT} missing: install Debian's kcat (apt-get install kcat)")
    tls = _tls(siem_cluster)
    common = [KCAT, "-L", "-J", "-m", "10", "-b", tls.ssl_bootstrap, "-X", "security.protocol=SSL",
              "-X", f"ssl.ca.location={tls.ca_location}"]
    cert = ["-X", f"ssl.certificate.location={tls.admin_certificate}",
            "-X", f"ssl.key.location={tls.admin_key}"]
    result = subprocess.run([*common, *cert], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    metadata = json.loads(result.stdout)
    assert topic in {t["topic"] for t in metadata["topics"]}
    assert [f"{b['name']}" for b in metadata["brokers"]] == tls.ssl_bootstrap.split(",")
    no_cert = [a if a != "10" else "3" for a in common]  # fails: no need to wait 10 s
    without = subprocess.run(no_cert, capture_output=True, text=True, timeout=60)
    assert without.returncode != 0
