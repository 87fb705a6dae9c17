"""No silent lock-outs on the SASL + ACL cluster (``siem_cluster``): a principal the cluster
denies the consumer group, or the topic's records, stops the poll loop with the reason and the
ACL to grant, instead of logging warnings forever while nothing is read."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka import admin as ka
from siem_clients import wait_until
from test_lockout_daemons import run_until_refused
from test_replay_sasl import sees_topic

from pipeline.dev import ClusterInfo
from pipeline.model import Event, KafkaRecord, StatelessProcessor
from pipeline.siem.admin import delete_acls, delete_scram, set_scram, sync_acls

pytestmark = pytest.mark.integration
LOG = logging.getLogger("test_lockout_sasl")  # librdkafka logs go here instead of stderr


@pytest.fixture
def denied(siem_cluster: ClusterInfo) -> Iterator[dict[str, Any]]:
    """A topic and a SCRAM principal with no ACLs yet (the test grants some)."""
    unique = uuid.uuid4().hex[:8]
    topic, user, password = f"test.lockout.{unique}", f"locked-{unique}", f"pw-{unique}"
    admin_conf: dict[str, Any] = {**siem_cluster.client_config(), "logger": LOG}
    admin = ka.AdminClient(admin_conf)
    admin.create_topics([ka.NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    set_scram(admin, user, password)
    conf = {**siem_cluster.client_config(), "sasl.username": user, "sasl.password": password,
            "logger": LOG}
    try:
        yield {"admin": admin, "admin_conf": admin_conf, "topic": topic, "user": user,
               "group": f"g-{unique}", "conf": conf}
    finally:
        delete_acls(admin, user)
        delete_scram(admin, user)
        admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)


def grant(site: dict[str, Any], *acls: tuple[ka.ResourceType, str, ka.AclOperation]) -> None:
    sync_acls(site["admin"], site["user"], {
        ka.AclBinding(kind, name, ka.ResourcePatternType.LITERAL, f"User:{site['user']}", "*",
                      op, ka.AclPermissionType.ALLOW) for kind, name, op in acls})
    wait_until(lambda: sees_topic(site["conf"], site["topic"]), 30,
               f"{site['user']} to see {site['topic']}")


# WRITE on the topic: the Runner's idempotent producer needs it to get a producer id.
def test_a_principal_denied_the_group_stops_with_the_acl_to_grant(denied: dict[str, Any]
                                                                   ) -> None:
    t = denied["topic"]
    grant(denied, (ka.ResourceType.TOPIC, t, ka.AclOperation.READ),
          (ka.ResourceType.TOPIC, t, ka.AclOperation.WRITE))
    reason = run_until_refused(denied["conf"], denied["group"], denied["topic"])
    assert "denies this principal the consumer group" in reason
    assert "grant READ on the group" in reason and "Group authorization failed" in reason


def test_a_principal_denied_the_topic_stops_with_the_acl_to_grant(denied: dict[str, Any]
                                                                   ) -> None:
    t = denied["topic"]
    grant(denied, (ka.ResourceType.TOPIC, t, ka.AclOperation.DESCRIBE),
          (ka.ResourceType.TOPIC, t, ka.AclOperation.WRITE),
          (ka.ResourceType.GROUP, denied["group"], ka.AclOperation.READ))
    reason = run_until_refused(denied["conf"], denied["group"], denied["topic"])
    assert "denies this principal a topic" in reason and "READ to consume" in reason
    assert "Topic authorization failed" in reason


class _Forward(StatelessProcessor):
    """Each event's value to ``topic``."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def process(self, event: Event) -> list[KafkaRecord]:
        return [KafkaRecord(self.topic, event.raw)]


def test_a_principal_denied_writing_its_output_stops_with_the_acl_to_grant(
        denied: dict[str, Any]) -> None:
    t, out = denied["topic"], f"{denied['topic']}.out"
    denied["admin"].create_topics([ka.NewTopic(out, 1, 1)])[out].result(timeout=30)
    try:
        grant(denied, (ka.ResourceType.TOPIC, t, ka.AclOperation.READ),
              (ka.ResourceType.TOPIC, t, ka.AclOperation.WRITE),
              (ka.ResourceType.TOPIC, out, ka.AclOperation.DESCRIBE),
              (ka.ResourceType.GROUP, denied["group"], ka.AclOperation.READ))
        producer = Producer(denied["admin_conf"])
        producer.produce(t, b"event")
        assert producer.flush(30) == 0
        reason = run_until_refused(denied["conf"], denied["group"], t, _Forward(out))
    finally:
        denied["admin"].delete_topics([out], operation_timeout=30)[out].result(timeout=30)
    assert reason.startswith("writing outputs: the cluster denies this principal a topic")
    assert "WRITE to produce" in reason and "Topic authorization failed" in reason


def test_topic_problems_names_the_acl_a_principal_lacks(denied: dict[str, Any]) -> None:
    from confluent_kafka import KafkaException

    from pipeline.startup import topic_problems

    admin = ka.AdminClient(denied["conf"])
    seen: list[list[str]] = []

    def answered() -> bool:  # the SCRAM credential may not have reached the broker yet
        try:
            seen.append(topic_problems(admin, [denied["topic"]], 5.0))
        except KafkaException:
            return False
        return True

    wait_until(answered, 30, f"{denied['user']} to authenticate")
    assert seen[-1] == [f"topic {denied['topic']}: the cluster denies this principal (grant "
                        "DESCRIBE and READ or WRITE on it, or fix the credentials in [kafka])"]
