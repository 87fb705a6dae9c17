"""The notifier daemon end to end: real Alert records on Kafka fanned out to a real webhook
receiver (Standard Webhooks signatures checked with the ``standardwebhooks`` package), a real
rsyslogd (TCP octet counting and UDP; CEF parsed back), SNS → SQS (moto) and a per-route Kafka
topic; a destination that is down dead-letters after its budget without delaying the others."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

import boto3
import pytest
from kit import produce, read_all
from notify_kit import Receiver, Rsyslog, free_port
from standardwebhooks.webhooks import Webhook as StandardVerifier

from pipeline.config import load_config
from pipeline.daemon import Context, build_registered
from pipeline.health.record import decode_health
from pipeline.rules.alert import alert_id, alert_record, decode_alert, encode_alert
from pipeline.rules.model import AlertDraft

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"notifier-integration-secret-32b!").decode()


def alert(n: int, *, update: int = 0, severity: str = "high") -> bytes:
    key = f"111122223333|user-{n}"
    draft = AlertDraft(
        alert_id=alert_id("root-login-no-mfa", key, 1_700_000_000_000), update=update,
        kind="rule", rule_id="root-login-no-mfa", key=key, window_start_ms=1_700_000_000_000,
        count=update + 1, first_seen_ms=1_700_000_000_000, last_seen_ms=1_700_000_000_000 + n,
        sample_event_ids=(f"ev-{n}",), title=f"Root login | no MFA = {n}", severity=severity,
        account="111122223333", region="eu-west-1", principal=f"user-{n}",
        source_ip="203.0.113.9")
    return encode_alert(alert_record(draft, tags=("attack.initial_access",),
                                     rule_source="native:root_login@1",
                                     created_ms=1_700_000_001_000))


def keys_of(values: list[bytes]) -> set[str]:
    return {f"{a['alert_id']}-{a['update']}" for a in map(decode_alert, values)}


def run_notifier(kafka: Any, topics: dict[str, str], routes: list[dict[str, Any]],
                 unique: str, idle_exit_s: float = 3) -> dict[str, Any]:
    cfg = load_config(env={}, overrides={
        "kafka.bootstrap": kafka.bootstrap, "topics.alerts": topics["alerts"],
        "topics.dlq": topics["dlq"], "topics.health": topics["health"],
        "notifier.group": f"notifier-{unique}", "notifier.routes": routes})
    daemon = build_registered("notifier", Context(cfg, kafka.bootstrap))
    assert daemon.startup_problems() == []
    stats = daemon.run(idle_exit_s=idle_exit_s)
    return daemon.summary(stats)


@pytest.fixture
def topics(make_topic) -> dict[str, str]:
    return {"alerts": make_topic("alerts", 2), "dlq": make_topic("dlq", 1),
            "health": make_topic("health", 1), "copy": make_topic("alerts-copy", 1)}


@pytest.fixture
def rsyslog(tmp_path) -> Any:
    receiver = Rsyslog(tmp_path).start()
    yield receiver
    receiver.stop()


def sns_queue(s3_endpoint: str, unique: str) -> tuple[str, Any, str]:
    aws = {"endpoint_url": s3_endpoint, "region_name": "us-east-1",
           "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    sns, sqs = boto3.client("sns", **aws), boto3.client("sqs", **aws)
    topic_arn = sns.create_topic(Name=f"alerts-{unique}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{unique}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})
    return topic_arn, sqs, queue_url


def drain(sqs: Any, queue_url: str, expected: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(20):
        got += sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1, MessageAttributeNames=["All"]
                                   ).get("Messages", [])
        if len(got) >= expected:
            break
    return got


def cef_fields(line: str) -> tuple[list[str], dict[str, str]]:
    """Header fields and extension pairs of a CEF line, unescaped (the test's own reader)."""
    header = re.split(r"(?<!\\)\|", line, maxsplit=7)

    def unescape(text: str) -> str:
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), text)

    ext = {m[1]: unescape(m[2]) for m in
           re.finditer(r"(\w+)=((?:\\.|[^\\=])*?)(?= \w+=|$)", header[7])}
    return [unescape(h) for h in header[:7]], ext


def test_fan_out_to_every_destination(kafka, s3_endpoint, topics, rsyslog, unique) -> None:
    values = [alert(1), alert(2), alert(1, update=1)]
    openings = keys_of(values[:2])
    produce(kafka.bootstrap, topics["alerts"], values)
    hook, github, slack = Receiver().start(), Receiver().start(), Receiver().start()
    topic_arn, sqs, queue_url = sns_queue(s3_endpoint, unique)
    routes = [
        {"name": "hook", "type": "webhook", "url": hook.url, "secret": SECRET,
         "match": {"kinds": ["opening", "update"]}},
        {"name": "github", "type": "webhook", "url": github.url, "signing": "github",
         "secret": "gh-secret"},
        {"name": "slack", "type": "webhook", "url": slack.url, "signing": "none",
         "format": "slack", "max_per_s": 4, "match": {"kinds": ["opening", "update"]}},
        {"name": "siem", "type": "syslog", "host": "127.0.0.1", "port": rsyslog.tcp_port,
         "protocol": "tcp", "format": "cef"},
        {"name": "siem-udp", "type": "syslog", "host": "127.0.0.1", "port": rsyslog.udp_port,
         "protocol": "udp", "format": "json"},
        {"name": "sns", "type": "sns", "topic_arn": topic_arn, "endpoint_url": s3_endpoint},
        {"name": "copy", "type": "kafka", "topic": topics["copy"]},
        {"name": "critical-only", "type": "kafka", "topic": topics["copy"],
         "match": {"min_severity": "critical"}},
    ]
    try:
        summary = run_notifier(kafka, topics, routes, unique)
    finally:
        for receiver in (hook, github, slack):
            receiver.stop()

    verifier = StandardVerifier(SECRET)
    assert sorted(r.headers["webhook-id"] for r in hook.requests) == sorted(keys_of(values))
    for request in hook.requests:  # raises WebhookVerificationError on a bad signature
        verifier.verify(request.body, request.headers)
        assert json.loads(request.body)["delivery_key"] == request.headers["webhook-id"]

    assert len(github.requests) == 2
    for request in github.requests:  # verified here, independently of the signer
        digest = hmac.new(b"gh-secret", request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["x-hub-signature-256"], f"sha256={digest}")
    assert {r.headers["webhook-id"] for r in slack.requests} == keys_of(values)
    assert all("Root login" in json.loads(r.body)["text"] for r in slack.requests)
    stamps = sorted(r.at_s for r in slack.requests)
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(stamps))  # 4 per second at most

    rows = rsyslog.lines(4)
    tcp = [r for r in rows if r[4].startswith("CEF:0|")]
    udp = [r for r in rows if r[4].startswith("{")]
    assert len(tcp) == 2 and len(udp) == 2, rows
    for version, msgid, app, sd, msg in tcp:
        assert (version, msgid, app) == ("1", "ALERT", "trailpipe")
        header, ext = cef_fields(msg)
        n = ext["suser"].removeprefix("user-")
        assert header[4:] == ["root-login-no-mfa", f"Root login | no MFA = {n}", "8"]
        assert ext["externalId"] in openings and f'key="{ext["externalId"]}"' in sd
        assert ext["cs5"] == "111122223333" and ext["src"] == "203.0.113.9"
    assert {json.loads(r[4])["delivery_key"] for r in udp} == openings

    messages = drain(sqs, queue_url, 2)
    assert {json.loads(m["Body"])["delivery_key"] for m in messages} == openings
    assert {m["MessageAttributes"]["delivery_key"]["StringValue"] for m in messages} == openings

    copied = read_all(kafka.bootstrap, topics["copy"], expected=2)
    assert {m.key().decode() for m in copied} == openings
    assert {json.loads(m.value())["delivery_key"] for m in copied} == openings

    counts = summary["routes"]
    assert counts["hook"]["delivered"] == 3 and counts["critical-only"]["delivered"] == 0
    assert all(counts[n]["delivered"] == 2 and counts[n]["dead_lettered"] == 0
               for n in ("siem", "siem-udp", "sns", "copy"))
    assert read_all(kafka.bootstrap, topics["dlq"], timeout_s=3) == []


def test_a_down_destination_dead_letters_without_delaying_the_others(kafka, topics,
                                                                     unique) -> None:
    values = [alert(n) for n in range(4)]
    produce(kafka.bootstrap, topics["alerts"], [*values, b"not an alert"])
    healthy, broken, gone = (Receiver().start(), Receiver(lambda _n: 500).start(),
                             Receiver(lambda n: 200 if n == 1 else 410).start())
    limited = Receiver(lambda n: 429 if n == 1 else 200, retry_after="1").start()
    budget = {"budget_ms": 2_000, "initial_backoff_ms": 50, "max_backoff_ms": 200,
              "timeout_s": 2}
    routes = [
        {"name": "healthy", "type": "webhook", "url": healthy.url, "secret": SECRET},
        {"name": "refused", "type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x",
         "signing": "github", "secret": "s", "retry": budget},
        {"name": "broken", "type": "webhook", "url": broken.url, "secret": SECRET,
         "retry": budget},
        {"name": "gone", "type": "webhook", "url": gone.url, "secret": SECRET, "retry": budget},
        {"name": "limited", "type": "webhook", "url": limited.url, "secret": SECRET},
        {"name": "copy", "type": "kafka", "topic": topics["copy"]},
    ]
    started = time.monotonic()
    try:
        summary = run_notifier(kafka, topics, routes, unique)
    finally:
        for receiver in (healthy, broken, gone, limited):
            receiver.stop()

    assert {r.headers["webhook-id"] for r in healthy.requests} == keys_of(values)
    # healthy got everything long before the broken routes' 2 s budget was spent
    assert max(r.at_s for r in healthy.requests) < min(r.at_s for r in broken.requests) + 1.0
    assert len(broken.requests) > 4  # retried
    first, *rest = limited.requests  # 429 + Retry-After: 1, then delivered
    assert {r.headers["webhook-id"] for r in rest} == keys_of(values)
    assert rest[0].at_s - first.at_s >= 1.0
    assert len(read_all(kafka.bootstrap, topics["copy"], expected=4)) == 4

    dlq = read_all(kafka.bootstrap, topics["dlq"], expected=4 + 4 + 3 + 1)
    by_route: dict[str, list[Any]] = {}
    for m in dlq:
        headers = dict(m.headers() or [])
        by_route.setdefault(headers.get("x-notifier-route", b"").decode(), []).append(headers)
        if "x-notifier-route" in headers:
            assert headers["x-error-type"] == b"NotifierUndeliverable"
            assert headers["x-source-topic"].decode() == topics["alerts"]
            assert keys_of([m.value()]) <= keys_of(values)
    assert {k: len(v) for k, v in by_route.items()} == {"refused": 4, "broken": 4, "gone": 3,
                                                        "": 1}
    assert all(b"HTTP 500" in h["x-error"] for h in by_route["broken"])
    assert all(b"Connection refused" in h["x-error"] or b"refused" in h["x-error"]
               for h in by_route["refused"])
    assert all(b"410" in h["x-error"] for h in by_route["gone"])

    health = [decode_health(m.value()) for m in read_all(kafka.bootstrap, topics["health"],
                                                         expected=1)]
    assert [(h["subject"], h["status"]) for h in health] == [("gone", "route_disabled")]
    counts = summary["routes"]
    assert counts["healthy"]["delivered"] == 4 and counts["gone"]["delivered"] == 1
    assert counts["limited"]["delivered"] == 4 and counts["limited"]["retried"] == 1
    assert counts["gone"]["disabled"] == "HTTP 410 Gone"
    assert counts["broken"]["dead_lettered"] == 4 and counts["broken"]["retried"] > 0
    assert counts["refused"]["failed"] == counts["refused"]["dead_lettered"] == 4
    assert summary["dead_lettered"] == 1  # the poison value, by the Runner
    assert time.monotonic() - started < 60
