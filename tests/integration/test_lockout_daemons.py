"""The lock-out sequence of issue 12 against the S3 API (moto server over plain HTTP) and a real
broker: ``lake init`` refuses the TLS-only policy there, naming the switch; a policy that still
denies the daemons' writes (moto ignores conditions) is rolled back with exit 2; with both
switches off the archiver can write; a lake that denies
the archiver (the TLS-only policy applied anyway) stops ``consume archiver`` at start-up with
one line, exit 2, instead of 403s forever; a subscribed topic that does not exist stops the
poll loop naming ``trailpipe topics create``. (``run_until_refused`` is shared with
test_lockout_sasl.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.config import RunnerConfig, load_config
from pipeline.daemon import Context
from pipeline.kafka import consumer_config, producer_config
from pipeline.lake.policy import LakePolicyConfig, bucket_policy
from pipeline.model import StatelessProcessor
from pipeline.refusals import RefusedError
from pipeline.runner import Runner

pytestmark = pytest.mark.integration

NO_TLS = {"TRAILPIPE_LAKE__DENY_INSECURE_TRANSPORT": "false"}
# moto ignores policy conditions: any Deny statement denies every put, so the dev endpoint
# needs both switches off.
NO_DENY = {**NO_TLS, "TRAILPIPE_LAKE__DENY_UNENCRYPTED_PUTS": "false"}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli.app", *args], capture_output=True,
                          text=True, env={**os.environ, "TRAILPIPE_LOG__FORMAT": "json",
                                          **(env or {})}, timeout=120)


def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="t", aws_secret_access_key="t")


def test_lake_init_refuses_the_tls_only_policy_on_plain_http(s3_endpoint: str,
                                                             unique: str) -> None:
    bucket = f"lockout-{unique}"
    refused = cli("lake", "init", "--lake", f"s3://{bucket}/trail", "--s3-endpoint", s3_endpoint)
    assert refused.returncode == 2, refused.stderr
    assert f"{s3_endpoint} is plain HTTP" in refused.stderr
    assert "`[lake] deny_insecure_transport = false`" in refused.stderr
    names = [b["Name"] for b in s3(s3_endpoint).list_buckets()["Buckets"]]
    assert bucket not in names  # nothing applied


def test_with_the_switches_off_init_applies_no_policy_and_the_archiver_writes(
        s3_endpoint: str, unique: str, kafka: Any) -> None:
    from consumers.archiver.daemon import wire

    bucket, lake = f"plain-{unique}", f"s3://plain-{unique}/trail"
    done = cli("lake", "init", "--lake", lake, "--s3-endpoint", s3_endpoint, env=NO_DENY)
    assert done.returncode == 0 and "bucket created" in done.stdout, done.stderr
    cfg = load_config(env={}, overrides={"storage.lake": lake,
                                         "storage.s3_endpoint": s3_endpoint})
    parts = wire(Context(cfg, kafka.bootstrap))  # the probe put and delete pass
    assert parts.sink is not None
    parts.sink.close()
    assert s3(s3_endpoint).list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@pytest.mark.skipif(bool(os.environ.get("TRAILPIPE_TEST_S3_ENDPOINT")),
                    reason="needs the session's moto server, which ignores policy conditions "
                    "(an external S3 endpoint may evaluate them and accept the probe)")
def test_init_rolls_back_a_policy_that_denies_the_daemons_writes(s3_endpoint: str,
                                                                 unique: str) -> None:
    bucket, lake = f"rollback-{unique}", f"s3://rollback-{unique}/trail"
    refused = cli("lake", "init", "--lake", lake, "--s3-endpoint", s3_endpoint, env=NO_TLS)
    assert refused.returncode == 2, refused.stderr
    assert f"{lake} denies lake-init's writes" in refused.stderr
    assert "deny_unencrypted_puts = false" in refused.stderr and "rolled back" in refused.stderr
    client = s3(s3_endpoint)
    with pytest.raises(client.exceptions.ClientError, match="NoSuchBucketPolicy"):
        client.get_bucket_policy(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="trail/x", Body=b"x", ServerSideEncryption="AES256")


@pytest.mark.parametrize("daemon", ["archiver", "aggregator", "digester"])
def test_a_lake_that_denies_a_daemon_stops_it_at_start_up(s3_endpoint: str, unique: str,
                                                          kafka: Any, daemon: str,
                                                          tmp_path: Path) -> None:
    from pipeline.lake.keys import generate_keypair

    bucket = f"locked-{daemon}-{unique}"
    client = s3(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    client.put_bucket_policy(Bucket=bucket,
                             Policy=json.dumps(bucket_policy(LakePolicyConfig(), bucket)))
    key, _, _ = generate_keypair(tmp_path / "digest.key")  # the digester needs one to start
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.cli.app", "consume", daemon, "--bootstrap",
         kafka.bootstrap, "--lake", f"s3://{bucket}/trail", "--s3-endpoint", s3_endpoint,
         "--idle-exit-s", "5"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TRAILPIPE_LOG__FORMAT": "json",
             "TRAILPIPE_DIGEST__PRIVATE_KEY": str(key)})
    assert run.returncode == 2, run.stderr
    reasons = [line for line in run.stderr.splitlines() if line.startswith("trailpipe:")]
    assert len(reasons) == 1 and f"s3://{bucket}/trail denies {daemon}'s writes" in reasons[0]
    assert "deny_insecure_transport = false" in reasons[0]
    assert "runner_started" not in run.stderr  # refused before it consumed anything


class Nothing(StatelessProcessor):
    def process(self, event: Any) -> list[Any]:
        return []


def run_until_refused(conf: dict[str, Any], group: str, topic: str,
                      processor: StatelessProcessor | None = None) -> str:
    """Run the poll loop on ``topic`` with client settings ``conf`` (and ``processor``, else
    one without outputs); the RefusedError's text (the test fails when the loop still
    runs after 60 s)."""
    runner = Runner(consumer_conf=consumer_config(conf, group, {}, read_committed=True),
                    producer_conf=producer_config(conf, {}), topics=[topic],
                    processor=processor or Nothing(), sink=None, config=RunnerConfig(),
                    dlq_topic=topic)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            runner.run()
        except BaseException as exc:  # handed to the test thread
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        runner.request_stop()
        thread.join(30)
        pytest.fail(f"the runner kept polling {topic} as a client the cluster refuses")
    assert raised and isinstance(raised[0], RefusedError), raised  # exit 2: not restarted
    return str(raised[0])


def test_a_topic_that_does_not_exist_stops_the_poll_loop_naming_topics_create(
        kafka: Any, unique: str) -> None:
    """Past the daemons' start-up check (a topic deleted, or a subscription no check saw)."""
    reason = run_until_refused(kafka.client_config(), f"g-{unique}", f"test.absent.{unique}")
    assert "a subscribed topic does not exist" in reason
    assert "`trailpipe topics create`" in reason


def test_topic_problems_tells_a_missing_topic_from_an_existing_one(kafka: Any, make_topic: Any,
                                                                   unique: str) -> None:
    from confluent_kafka.admin import AdminClient

    from pipeline.startup import topic_problems

    there, absent = make_topic("there", 1), f"test.absent.{unique}"
    admin = AdminClient(kafka.client_config())
    assert topic_problems(admin, [there, absent, there]) == [
        f"topic {absent} does not exist; create the documented topics with "
        "`trailpipe topics create`"]
    assert absent not in admin.list_topics(timeout=10).topics  # nothing was auto-created


def test_topic_problems_raises_when_the_cluster_does_not_answer() -> None:
    import socket

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from pipeline.startup import topic_problems

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(KafkaException):
        topic_problems(AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}), ["t"], 2.0)
