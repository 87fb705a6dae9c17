"""Issue 11 acceptance on the SASL + TLS cluster (``siem_cluster``): a replay principal with
only READ on the events topic (a SCRAM user and one topic ACL: no group ACL, nothing on the
cluster) replays every record of a window over SASL_SSL; ``--to-topic`` into the live events
topic or an ``audit.*`` topic is refused without ``--force`` (exit 2, before anything is read),
even for the super-user who could write there."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from replay_kit import (
    KEEP,
    event_ids,
    event_ms,
    iso_z,
    produce_rows,
    summary_of,
    timed_corpus,
    trailpipe,
)
from siem_clients import wait_until

from pipeline.dev import ClusterInfo
from pipeline.siem.admin import delete_acls, delete_scram, set_scram, sync_acls

pytestmark = pytest.mark.integration
LOG = logging.getLogger("test_replay_sasl")  # librdkafka logs go here instead of stderr
PARTITIONS = 3


@pytest.fixture(scope="module")
def site(siem_cluster: ClusterInfo) -> Iterator[dict[str, Any]]:
    """The events topic (the timed corpus, timestamped with event time) and a READ-only
    SCRAM principal on it, ready (the credential and the ACL reached the broker)."""
    unique = uuid.uuid4().hex[:8]
    topic, user, password = f"test.replay-sasl.{unique}", f"replayer-{unique}", f"pw-{unique}"
    admin_conf: dict[str, Any] = {**siem_cluster.client_config(), "logger": LOG}
    admin = AdminClient(admin_conf)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1, config=KEEP)])[topic].result(timeout=30)
    try:
        records = timed_corpus()
        produce_rows(admin_conf, topic, [(r, event_ms(r)) for r in records])
        set_scram(admin, user, password)
        sync_acls(admin, user, {AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL,
                                           f"User:{user}", "*", AclOperation.READ,
                                           AclPermissionType.ALLOW)})
        user_conf = {**siem_cluster.sasl_ssl_client_config(), "sasl.username": user,
                     "sasl.password": password, "logger": LOG}
        wait_until(lambda: sees_topic(user_conf, topic), 30, f"{user} to see {topic}")
        yield {"topic": topic, "records": records, "admin": admin_conf,
               "env": cli_env(siem_cluster, user, password, topic),
               "admin_env": cli_env(siem_cluster, admin_conf["sasl.username"],
                                    admin_conf["sasl.password"], topic)}
    finally:
        delete_acls(admin, user)
        delete_scram(admin, user)
        admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)


def cli_env(info: ClusterInfo, user: str, password: str, topic: str) -> dict[str, str]:
    """trailpipe's config as TRAILPIPE_* variables: SCRAM as ``user`` over SASL_SSL (trusting
    the cluster's CA), ``topic`` as the events topic."""
    assert info.tls is not None
    return {"TRAILPIPE_KAFKA__BOOTSTRAP": info.tls.sasl_ssl_bootstrap,
            "TRAILPIPE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "TRAILPIPE_KAFKA__SSL__CA_LOCATION": str(info.tls.ca_location),
            "TRAILPIPE_KAFKA__SASL__USERNAME": user, "TRAILPIPE_KAFKA__SASL__PASSWORD": password,
            "TRAILPIPE_TOPICS__EVENTS": topic}


def sees_topic(conf: dict[str, Any], topic: str) -> bool:
    """The principal authenticates and the topic's metadata is visible to it."""
    try:
        meta = AdminClient(conf).list_topics(topic, timeout=3).topics.get(topic)
    except KafkaException:
        return False
    return meta is not None and meta.error is None


def window_args(site: dict[str, Any]) -> list[str]:
    times = [event_ms(r) for r in site["records"]]
    return ["replay", "--from", iso_z(min(times)), "--to", iso_z(max(times) + 1)]


def high_watermarks(conf: dict[str, Any], topic: str) -> list[int]:
    consumer = Consumer({**conf, "group.id": "unused", "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in sorted(meta.partitions)]
    finally:
        consumer.close()


def test_a_read_only_principal_replays_every_record_of_the_window(
        site: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "case.jsonl"
    summary = summary_of(trailpipe(*window_args(site), "--out", str(out), env=site["env"]))
    produced = len(site["records"])
    assert summary["scanned"] == summary["written"] == produced
    assert event_ids(out.read_bytes()) == sorted(str(r.get("eventID") or "")
                                                 for r in site["records"])
    manifest = json.loads((tmp_path / "case.jsonl.manifest.json").read_bytes())
    assert (manifest["records_in"], manifest["records_out"]) == (produced, produced)


def watermarks_if_any(conf: dict[str, Any], topic: str) -> list[int] | None:
    """The topic's high watermarks, or None when it does not exist."""
    topics = AdminClient(conf).list_topics(timeout=10).topics
    return high_watermarks(conf, topic) if topic in topics else None


@pytest.mark.parametrize("target", ["audit.events.v1", "<events topic>"])
def test_to_topic_into_the_live_or_an_audit_topic_is_refused_without_force(
        site: dict[str, Any], target: str) -> None:
    target = site["topic"] if target == "<events topic>" else target
    before = watermarks_if_any(site["admin"], target)
    result = trailpipe(*window_args(site), "--to-topic", target, env=site["admin_env"])
    assert result.returncode == 2, result.stderr.decode()
    err = result.stderr.decode()
    assert f"refusing to write a replay into {target}" in err and "--force" in err
    assert watermarks_if_any(site["admin"], target) == before  # nothing produced nor created


def test_force_lets_the_super_user_replay_into_an_audit_topic(site: dict[str, Any]) -> None:
    target = f"audit.replay-check.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(site["admin"])
    admin.create_topics([NewTopic(target, 1, 1, config=KEEP)])[target].result(timeout=30)
    try:
        refused = trailpipe(*window_args(site), "--to-topic", target, env=site["admin_env"])
        assert refused.returncode == 2, refused.stderr.decode()
        assert high_watermarks(site["admin"], target) == [0]
        forced = trailpipe(*window_args(site), "--to-topic", target, "--force",
                           env=site["admin_env"])
        summary_of(forced)
        assert high_watermarks(site["admin"], target) == [len(site["records"])]
    finally:
        admin.delete_topics([target], operation_timeout=30)[target].result(timeout=30)
