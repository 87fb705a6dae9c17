"""Delivery notices are also published to SNS when configured (moto's SNS → SQS over HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from kit import read_all

from pipeline.config import load_config
from pipeline.daemon import Context, build_registered

pytestmark = pytest.mark.integration


def test_each_object_is_notified_on_sns(kafka, s3_endpoint, make_topic, unique) -> None:
    events, deliveries, health = (make_topic("events", 3), make_topic("deliveries", 1),
                                  make_topic("health", 1))
    aws = {"endpoint_url": s3_endpoint, "region_name": "us-east-1",
           "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    boto3.client("s3", **aws).create_bucket(Bucket=f"sns-{unique}")
    sns, sqs = boto3.client("sns", **aws), boto3.client("sqs", **aws)
    topic_arn = sns.create_topic(Name=f"lake-{unique}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"lake-{unique}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})

    made = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "produce", "generator",
                           "--count", "2000", "--rate", "1000000", "--bootstrap", kafka.bootstrap],
                          env={**os.environ, "TRAILPIPE_TOPICS__EVENTS": events},
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr[-2000:]
    cfg = load_config(env={}, overrides={
        "kafka.bootstrap": kafka.bootstrap, "storage.lake": f"s3://sns-{unique}/lake",
        "storage.s3_endpoint": s3_endpoint, "topics.events": events,
        "archiver.group": f"sns-{unique}", "topics.deliveries": deliveries,
        "topics.health": health, "archiver.max_age_ms": 1000,
        "archiver.sns_topic_arn": topic_arn, "archiver.sns_endpoint": s3_endpoint})
    archiver = build_registered("archiver", Context(cfg, kafka.bootstrap))
    assert archiver.run(idle_exit_s=3).consumed == 2000

    notified = {json.loads(m.value())["key"] for m in read_all(kafka.bootstrap, deliveries)}
    received: set[str] = set()
    for _ in range(20):
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                    WaitTimeSeconds=1).get("Messages", [])
        received |= {json.loads(m["Body"])["key"] for m in batch}
        if received >= notified:
            break
    assert notified and received == notified
