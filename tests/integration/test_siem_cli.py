"""``trailpipe siem``: the subscriptions registry, and subscribe/list/rotate/revoke against a
real SASL cluster (principals, exactly three ACL bindings, credential files)."""

from __future__ import annotations

import json
import logging
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from cryptography import x509
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.dev import ClusterInfo
from pipeline.kafka import producer_config
from pipeline.siem.admin import principal_bindings, scram_exists
from pipeline.siem.model import Subscription, View, ViewFilter, view_topic
from pipeline.siem.plan import acl_bindings
from pipeline.siem.registry import delete_subscription, load_subscriptions, put_subscription

if TYPE_CHECKING:  # imported at run time, pytest would try to collect it as a test class
    from conftest import TestCluster

pytestmark = pytest.mark.integration
LOG = logging.getLogger("test_siem_cli")  # librdkafka logs go here instead of stderr


def _sub(name: str, topics: list[str], created_ms: int = 1) -> Subscription:
    return Subscription(name=name, topics=topics, auth="scram", created_ms=created_ms)


def test_registry_keeps_latest_and_honours_tombstones(
        kafka: TestCluster, make_topic: Callable[..., str], unique: str) -> None:
    topic = make_topic("subs", partitions=2, **{"cleanup.policy": "compact"})
    base = kafka.client_config()
    prod = producer_config(base, {})
    assert load_subscriptions(base, topic) == {}
    view = View(filter=ViewFilter(accounts=["111122223333"]), topic=view_topic(f"b{unique}"))
    first, second = _sub(f"a{unique}", ["audit.events.json.v1"]), _sub(f"b{unique}", ["x"])
    put_subscription(prod, topic, first)
    put_subscription(prod, topic, second)
    updated = second.model_copy(update={"topics": ["y", "z"], "view": view})
    put_subscription(prod, topic, updated)
    assert load_subscriptions(base, topic) == {first.name: first, second.name: updated}
    delete_subscription(prod, topic, first.name)
    assert load_subscriptions(base, topic) == {second.name: updated}


def test_registry_skips_unparsable_records(
        kafka: TestCluster, make_topic: Callable[..., str], unique: str) -> None:
    from kit import produce

    topic = make_topic("subs", partitions=1, **{"cleanup.policy": "compact"})
    good = _sub(f"g{unique}", ["t"])
    put_subscription(producer_config(kafka.client_config(), {}), topic, good)
    produce(kafka.bootstrap, topic, [b"{not json", b'{"name": "x"}'], key=b"bad")
    assert load_subscriptions(kafka.client_config(), topic) == {good.name: good}


def test_registry_missing_topic_is_an_error(kafka: TestCluster, unique: str) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_subscriptions(kafka.client_config(), f"no.such.{unique}")


# --- the commands, against the shared SASL + TLS cluster -------------------------------------

EVENTS_PARTITIONS = 3
RETENTION_MS = "604800000"


@pytest.fixture(scope="module")
def siem_env(siem_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[str, str]]:
    """Config (as TRAILPIPE_* variables) of trailpipe's admin principal on ``siem_cluster``,
    with this module's own topics and secrets directory."""
    assert siem_cluster.sasl is not None and siem_cluster.state_dir is not None
    unique = uuid.uuid4().hex[:8]
    topics = {"EVENTS": f"test.siem.events.{unique}", "EVENTS_JSON": f"test.siem.json.{unique}",
              "ALERTS_JSON": f"test.siem.alerts.{unique}",
              "SIEM_SUBSCRIPTIONS": f"test.siem.subs.{unique}"}
    admin = AdminClient(_admin_conf(siem_cluster))
    new = [NewTopic(topics["EVENTS"], EVENTS_PARTITIONS, 1,
                    config={"retention.ms": RETENTION_MS}),
           NewTopic(topics["EVENTS_JSON"], EVENTS_PARTITIONS, 1),
           NewTopic(topics["ALERTS_JSON"], 1, 1),
           NewTopic(topics["SIEM_SUBSCRIPTIONS"], 1, 1, config={"cleanup.policy": "compact"})]
    for fut in admin.create_topics(new).values():
        fut.result(timeout=30)
    env = {"TRAILPIPE_KAFKA__BOOTSTRAP": siem_cluster.bootstrap,
           "TRAILPIPE_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "TRAILPIPE_KAFKA__SASL__USERNAME": siem_cluster.sasl.username,
           "TRAILPIPE_KAFKA__SASL__PASSWORD": siem_cluster.sasl.password,
           "TRAILPIPE_DEV__STATE_DIR": str(siem_cluster.state_dir),
           "TRAILPIPE_SIEM__SECRETS_DIR": str(tmp_path_factory.mktemp("siem-secrets")),
           **{f"TRAILPIPE_TOPICS__{k}": v for k, v in topics.items()}}
    yield env
    for fut in admin.delete_topics(list(topics.values()), operation_timeout=30).values():
        fut.result(timeout=30)


def _admin_conf(info: ClusterInfo) -> dict[str, Any]:
    return {**info.client_config(), "logger": LOG}


def _invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, ["siem", *args], env=env, catch_exceptions=False)


def _subscribe(env: dict[str, str], *args: str) -> Any:
    result = _invoke(env, "subscribe", *args)
    assert result.exit_code == 0, result.output
    return result


def _bindings(info: ClusterInfo, name: str) -> set[Any]:
    return principal_bindings(AdminClient(_admin_conf(info)), name)


def _client_conf(path: Path) -> dict[str, Any]:
    """The librdkafka settings of a written ``librdkafka.conf``."""
    lines = path.read_text().splitlines()
    conf = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {**conf, "logger": LOG}


def _authenticates(conf: dict[str, Any]) -> bool:
    """Whether a client with ``conf`` gets cluster metadata (False: refused or no answer)."""
    try:
        AdminClient(conf).list_topics(timeout=5)
    except KafkaException:
        return False
    return True


def _wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    """Credentials and ACLs reach brokers through the metadata log: wait for the state."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.3)


def _read_one(conf: dict[str, Any], topic: str, group: str) -> KafkaError | bytes:
    """The first message (value) or error a consumer in ``group`` gets from ``topic``."""
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                err = msg.error()
                return msg.value() or b"" if err is None else err
        raise AssertionError(f"nothing from {topic} within 15 s")
    finally:
        consumer.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_subscribe_twice_keeps_exactly_three_bindings_and_the_password(
        siem_cluster: ClusterInfo, siem_env: dict[str, str], unique: str) -> None:
    name = f"s{unique}"
    first = _subscribe(siem_env, name, "--topics", "events,alerts")
    directory = Path(siem_env["TRAILPIPE_SIEM__SECRETS_DIR"]) / name
    password = (directory / "password").read_text()
    granted = [siem_env["TRAILPIPE_TOPICS__EVENTS_JSON"], siem_env["TRAILPIPE_TOPICS__ALERTS_JSON"]]
    expected = acl_bindings(name, granted)
    assert len(expected) == 3
    assert _bindings(siem_cluster, name) == expected
    assert _mode(directory) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["password", "ca.pem", "librdkafka.conf", "client.properties",
         "splunk-connect-for-kafka.properties", "elastic-kafka-input.yml"])
    assert {_mode(p) for p in directory.iterdir()} == {0o600}
    assert password not in first.output and "librdkafka >= 2.6.1" in first.output
    record = _registry(siem_env)[name]

    second = _subscribe(siem_env, name, "--topics", "events,alerts")
    assert "kept" in second.output and password not in second.output
    assert (directory / "password").read_text() == password
    assert _bindings(siem_cluster, name) == expected
    assert _registry(siem_env)[name] == record

    _subscribe(siem_env, name, "--topics", "alerts")  # fewer topics: the extra binding goes
    assert _bindings(siem_cluster, name) == acl_bindings(name, granted[1:])


def _registry(env: dict[str, str]) -> dict[str, Subscription]:
    from pipeline.config import load_config
    from pipeline.kafka import base_client_config

    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        cfg = load_config(None)
    return load_subscriptions(base_client_config(cfg.kafka, env["TRAILPIPE_KAFKA__BOOTSTRAP"]),
                              cfg.topics.siem_subscriptions)


def _produce(info: ClusterInfo, topic: str, count: int) -> None:
    producer = Producer({**_admin_conf(info), "enable.idempotence": True})
    for i in range(count):
        producer.produce(topic, value=orjson.dumps({"eventID": f"e{i}"}), key=b"1|us-east-1")
    assert producer.flush(30) == 0


def test_scram_subscriber_reads_then_rotate_and_revoke_cut_it_off(
        siem_cluster: ClusterInfo, siem_env: dict[str, str], unique: str) -> None:
    name, topic = f"r{unique}", siem_env["TRAILPIPE_TOPICS__EVENTS_JSON"]
    _produce(siem_cluster, topic, 3)
    _subscribe(siem_env, name, "--topics", "events")
    directory = Path(siem_env["TRAILPIPE_SIEM__SECRETS_DIR"]) / name
    old = _client_conf(directory / "librdkafka.conf")
    assert old["security.protocol"] == "SASL_SSL" and old["sasl.mechanism"] == "SCRAM-SHA-512"
    _wait_for(lambda: _authenticates(old), "the new SCRAM credential works")
    value = _read_one(old, topic, f"{name}.test")
    assert isinstance(value, bytes) and orjson.loads(value)["eventID"].startswith("e")
    outside = _read_one(old, topic, f"other{unique}")  # a group outside its prefix
    assert isinstance(outside, KafkaError)
    assert outside.code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    rotated = _invoke(siem_env, "rotate", name)
    assert rotated.exit_code == 0, rotated.output
    new = _client_conf(directory / "librdkafka.conf")
    assert new["sasl.password"] != old["sasl.password"]
    assert new["sasl.password"] not in rotated.output
    _wait_for(lambda: not _authenticates(old), "the old password is refused")
    _wait_for(lambda: _authenticates(new), "the new password works")

    revoked = _invoke(siem_env, "revoke", name)
    assert revoked.exit_code == 0, revoked.output
    assert "connections.max.reauth.ms" in revoked.output
    assert _bindings(siem_cluster, name) == set()
    assert name not in _registry(siem_env) and not directory.exists()
    _wait_for(lambda: not _authenticates(new), "the revoked credential is refused")


def test_mtls_subscriber_reads_with_its_certificate(
        siem_cluster: ClusterInfo, siem_env: dict[str, str], unique: str) -> None:
    name, topic = f"m{unique}", siem_env["TRAILPIPE_TOPICS__ALERTS_JSON"]
    _produce(siem_cluster, topic, 1)
    _subscribe(siem_env, name, "--topics", "alerts")  # first scram: switching drops it
    out = _subscribe(siem_env, name, "--topics", "alerts", "--auth", "mtls")
    directory = Path(siem_env["TRAILPIPE_SIEM__SECRETS_DIR"]) / name
    assert not scram_exists(AdminClient(_admin_conf(siem_cluster)), name)
    assert {p.name for p in directory.iterdir()} >= {"client.key", "client.pem", "ca.pem"}
    assert "password" not in {p.name for p in directory.iterdir()}
    assert "BEGIN PRIVATE KEY" not in out.output
    cert = x509.load_pem_x509_certificate((directory / "client.pem").read_bytes())
    assert cert.subject.rfc4514_string() == f"CN={name}"
    conf = _client_conf(directory / "librdkafka.conf")
    assert conf["security.protocol"] == "SSL"
    assert _read_one(conf, topic, f"{name}.kcat") == orjson.dumps({"eventID": "e0"})
    key = (directory / "client.key").read_bytes()
    _subscribe(siem_env, name, "--topics", "alerts", "--auth", "mtls")
    assert (directory / "client.key").read_bytes() == key
    assert _bindings(siem_cluster, name) == acl_bindings(name, [topic])
    rotated = _invoke(siem_env, "rotate", name)
    assert rotated.exit_code == 0 and "until it expires" in rotated.output
    assert (directory / "client.key").read_bytes() != key
    assert _invoke(siem_env, "revoke", name).exit_code == 0


def test_view_subscription_grants_its_own_topic(
        siem_cluster: ClusterInfo, siem_env: dict[str, str], unique: str) -> None:
    name = f"v{unique}"
    bad = _invoke(siem_env, "subscribe", name, "--topics", "events", "--format", "avro",
                  "--account", "111122223333")
    assert bad.exit_code == 2 and "--format json" in bad.output
    _subscribe(siem_env, name, "--topics", "events,alerts", "--account", "111122223333",
               "--redact", "requestParameters.password", "--hash-source-ip")
    sub = _registry(siem_env)[name]
    assert sub.view is not None and sub.view.hash_key_hex is not None
    assert sub.view.filter.accounts == ["111122223333"]
    view = view_topic(name)
    meta = AdminClient(_admin_conf(siem_cluster)).list_topics(view, timeout=10).topics[view]
    assert len(meta.partitions) == EVENTS_PARTITIONS
    assert _bindings(siem_cluster, name) == acl_bindings(
        name, [view, siem_env["TRAILPIPE_TOPICS__ALERTS_JSON"]])
    _subscribe(siem_env, name, "--topics", "events,alerts", "--account", "111122223333",
               "--redact", "requestParameters.password", "--hash-source-ip")
    assert _registry(siem_env)[name] == sub  # the hashing key is kept
    assert _invoke(siem_env, "revoke", name).exit_code == 0
    assert view not in AdminClient(_admin_conf(siem_cluster)).list_topics(timeout=10).topics


def test_list_shows_each_group_lag(
        siem_cluster: ClusterInfo, siem_env: dict[str, str], unique: str) -> None:
    name, topic = f"l{unique}", siem_env["TRAILPIPE_TOPICS__EVENTS_JSON"]
    _subscribe(siem_env, name, "--topics", "events", "--auth", "mtls")
    conf = _client_conf(Path(siem_env["TRAILPIPE_SIEM__SECRETS_DIR"]) / name / "librdkafka.conf")
    _produce(siem_cluster, topic, 2)
    consumed = _consume_and_commit(conf, topic, f"{name}.splunk")
    _produce(siem_cluster, topic, 5)
    result = _invoke(siem_env, "list", "--json")
    assert result.exit_code == 0, result.output
    mine = next(d for d in json.loads(result.stdout) if d["name"] == name)
    assert mine["topics"] == [topic] and mine["auth"] == "mtls"
    assert {g["group"] for g in mine["groups"]} == {f"{name}.splunk"}
    assert sum(g["lag"] for g in mine["groups"]) == 5
    assert sum(g["committed"] for g in mine["groups"]) == consumed
    table = _invoke(siem_env, "list")
    assert f"group {name}.splunk: lag 5 records" in table.output
    assert _invoke(siem_env, "revoke", name).exit_code == 0


def _consume_and_commit(conf: dict[str, Any], topic: str, group: str) -> int:
    """Read ``topic`` to its end in ``group`` and commit; returns the records read."""
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.subscribe([topic])
    read, eof = 0, set[int]()
    deadline = time.monotonic() + 20
    try:
        while len(eof) < EVENTS_PARTITIONS:
            assert time.monotonic() < deadline, "topic not read to its end"
            for msg in consumer.consume(100, 0.5):
                err = msg.error()
                if err is None:
                    read += 1
                elif err.code() == KafkaError._PARTITION_EOF:
                    eof.add(msg.partition() or 0)
                else:
                    raise AssertionError(err)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return read


def test_usage_errors_exit_2_with_the_reason(siem_env: dict[str, str], unique: str) -> None:
    unknown = _invoke(siem_env, "rotate", f"nobody{unique}")
    assert unknown.exit_code == 2 and "no subscription" in unknown.output
    bad_name = _invoke(siem_env, "subscribe", "Bad.Name", "--topics", "events")
    assert bad_name.exit_code == 2 and "subscription name" in bad_name.output
    bad_role = _invoke(siem_env, "subscribe", f"x{unique}", "--topics", "events,raw")
    assert bad_role.exit_code == 2 and "roles are events, alerts" in bad_role.output
