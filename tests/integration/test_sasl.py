"""SASL/SCRAM-SHA-512 + StandardAuthorizer on a real broker: authentication and ACLs enforced.

The admin super-user (created at format time) manages topics, users and ACLs; a wrong password
is refused at authentication; a new user without ACLs is denied, then allowed after a WRITE ACL.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from pipeline.dev import ClusterInfo, down, up

pytestmark = pytest.mark.integration

LOG = logging.getLogger("test_sasl")  # librdkafka logs go here instead of stderr
TOPIC = f"sasl.orders.{uuid.uuid4().hex[:8]}"
USER, USER_PASSWORD = "alice", "alice-secret-1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    state_dir = tmp_path_factory.mktemp("sasl-cluster")
    try:
        yield up(state_dir, sasl=True)
    finally:
        down(state_dir)


@pytest.fixture(scope="module")
def admin(cluster: ClusterInfo) -> AdminClient:
    conf: dict[str, Any] = {**cluster.client_config(), "logger": LOG}
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(timeout=30)
    return admin


def _as(cluster: ClusterInfo, username: str, password: str) -> dict[str, Any]:
    return {**cluster.client_config(), "sasl.username": username, "sasl.password": password,
            "logger": LOG}


def _produce_one(conf: dict[str, Any], errors: list[KafkaError]) -> KafkaError | None:
    """Produce one message; return its delivery error (None = delivered). Client-level errors
    (error_cb) are appended to ``errors``; a message that gets no report fails the test."""
    reports: list[KafkaError | None] = []
    producer = Producer({**conf, "error_cb": errors.append, "message.timeout.ms": 10_000})
    producer.produce(TOPIC, value=b"order-1", on_delivery=lambda err, _m: reports.append(err))
    producer.flush(15)
    assert reports, f"no delivery report; client errors: {errors}"
    return reports[0]


def test_admin_creates_topic(cluster: ClusterInfo, admin: AdminClient) -> None:
    assert cluster.sasl is not None
    assert cluster.client_config()["security.protocol"] == "SASL_PLAINTEXT"
    assert cluster.client_config()["sasl.mechanism"] == "SCRAM-SHA-512"
    assert TOPIC in admin.list_topics(timeout=10).topics
    assert _produce_one(cluster.client_config(), []) is None


def test_wrong_password_is_refused(cluster: ClusterInfo, admin: AdminClient) -> None:
    assert cluster.sasl is not None
    bad = _as(cluster, cluster.sasl.username, cluster.sasl.password + "-wrong")
    with pytest.raises(KafkaException):
        AdminClient(bad).list_topics(timeout=3)
    errors: list[KafkaError] = []
    producer = Producer({**bad, "error_cb": errors.append})
    producer.produce(TOPIC, value=b"never")
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors, "no client error reported for a wrong password"
    assert errors[0].code() == KafkaError._AUTHENTICATION
    assert "invalid credentials" in errors[0].str()
    producer.purge()  # drop the undeliverable message so the client closes at once
    producer.flush(1)


def test_user_without_acl_is_denied_until_granted(cluster: ClusterInfo,
                                                  admin: AdminClient) -> None:
    cred = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upsert = UserScramCredentialUpsertion(USER, cred, USER_PASSWORD.encode())
    admin.alter_user_scram_credentials([upsert])[USER].result(timeout=30)
    conf = _as(cluster, USER, USER_PASSWORD)

    deadline = time.monotonic() + 20
    while True:  # the new credential reaches the broker through the metadata log
        errors: list[KafkaError] = []
        denied = _produce_one(conf, errors)
        if not any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            break
        assert time.monotonic() < deadline, f"user {USER} never authenticated: {errors}"
        time.sleep(0.5)
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    acl = AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, f"User:{USER}",
                     "*", AclOperation.WRITE, AclPermissionType.ALLOW)
    admin.create_acls([acl])[acl].result(timeout=30)
    deadline = time.monotonic() + 20
    while (result := _produce_one(conf, [])) is not None:
        assert result.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, result
        assert time.monotonic() < deadline, f"still denied after the WRITE ACL: {result}"
        time.sleep(0.5)
