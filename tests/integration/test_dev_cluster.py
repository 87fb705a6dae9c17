"""The dev launcher against real processes: one KRaft broker from Maven jars plus moto's S3 server.

The module starts its own cluster in a private state dir and always downs it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from pipeline.dev import ClusterInfo, down, status, up
from pipeline.dev.cli import app
from pipeline.dev.libs import find_repo_root, kafka_version

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dev-cluster")


@pytest.fixture(scope="module")
def cluster(state_dir: Path) -> Iterator[ClusterInfo]:
    try:
        yield up(state_dir, brokers=1, s3=True)
    finally:
        down(state_dir)


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def test_up_twice_is_idempotent(cluster: ClusterInfo, state_dir: Path) -> None:
    again = up(state_dir, brokers=1, s3=True)
    assert [b.pid for b in again.brokers] == [b.pid for b in cluster.brokers]
    assert again.bootstrap == cluster.bootstrap
    assert again.s3_endpoint == cluster.s3_endpoint
    assert all(b.alive for b in again.brokers)


def test_status_json_shape(cluster: ClusterInfo, state_dir: Path) -> None:
    info = status(state_dir)
    assert info is not None
    doc = info.to_json_dict()
    assert set(doc) == {"bootstrap", "brokers", "kafka_version", "s3_endpoint"}
    assert re.fullmatch(r"127\.0\.0\.1:\d+", doc["bootstrap"])
    assert doc["kafka_version"] == kafka_version(find_repo_root()) == "4.4.0"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", doc["s3_endpoint"])
    [broker] = doc["brokers"]
    assert set(broker) == {"node_id", "pid", "port", "alive"}
    assert broker == {"node_id": 1, "pid": cluster.brokers[0].pid,
                      "port": int(doc["bootstrap"].split(":")[1]), "alive": True}
    result = CliRunner().invoke(app, ["status", "--json", "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == doc


def test_produce_and_consume_one_message(cluster: ClusterInfo) -> None:
    topic = f"dev.smoke.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(dict(cluster.client_config()))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = Producer(cluster.client_config())
    errors: list[KafkaError | None] = []
    producer.produce(topic, key=b"k", value=b"hello",
                     on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None]
    consumer = Consumer({**cluster.client_config(), "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is not None:
                pytest.fail(f"consumer error: {msg.error()}")
        assert msg is not None, "no message consumed within 30 s"
        assert (msg.key(), msg.value()) == (b"k", b"hello")
    finally:
        consumer.close()


def test_s3_endpoint_answers_boto3(cluster: ClusterInfo) -> None:
    s3 = boto3.client("s3", endpoint_url=cluster.s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="dev-lake")
    s3.put_object(Bucket="dev-lake", Key="a/b.json", Body=b'{"ok": true}')
    body = s3.get_object(Bucket="dev-lake", Key="a/b.json")["Body"].read()
    assert body == b'{"ok": true}'


def test_down_leaves_foreign_pids_alone(tmp_path: Path) -> None:
    """A state file whose pid now belongs to another program (pid reuse) is not signalled."""
    decoy = subprocess.Popen(["sleep", "60"])
    try:
        fake = {"kafka_version": "4.4.0", "cluster_id": "x", "sasl_password": None, "s3": None,
                "nodes": [{"node_id": 1, "port": 1, "controller_port": 2,
                           "proc": {"pid": decoy.pid, "argv": ["java", "kafka.Kafka"],
                                    "start_ticks": None}}]}
        (tmp_path / "state.json").write_text(json.dumps(fake))
        assert down(tmp_path) == []
        assert decoy.poll() is None
        assert status(tmp_path) is None
    finally:
        decoy.kill()
        decoy.wait()


def test_down_stops_only_its_pids(cluster: ClusterInfo, state_dir: Path) -> None:
    decoy = subprocess.Popen(["sleep", "60"])
    try:
        info = status(state_dir)
        assert info is not None and info.s3_endpoint is not None
        state = json.loads((state_dir / "state.json").read_text())
        ours = {b.pid for b in info.brokers} | {state["s3"]["proc"]["pid"]}
        stopped = down(state_dir)
        assert set(stopped) == ours
        assert not any(_pid_alive(pid) for pid in ours)
        assert decoy.poll() is None
        assert status(state_dir) is None
        assert down(state_dir) == []
    finally:
        decoy.kill()
        decoy.wait()
