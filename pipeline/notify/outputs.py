"""SNS and Kafka destinations.

SNS: the alert JSON is the message; a ``.fifo`` topic gets ``MessageGroupId`` = alert id and
``MessageDeduplicationId`` = the idempotency key; every topic gets the key as the
``delivery_key`` message attribute (and ``severity``, ``rule_id``) for subscription filters.
Kafka: the alert JSON (UTF-8, the same document webhooks get; a reader needs no Avro schema)
produced to the route's topic, key = the idempotency key, and acknowledged before it counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.notify.alerts import Alert, alert_json, delivery_key
from pipeline.notify.retry import DeliveryFailed
from pipeline.producer import DeliveryError, KafkaProducer

PERMANENT_SNS_ERRORS = frozenset({
    "NotFound", "NotFoundException", "InvalidParameter", "InvalidParameterException",
    "InvalidParameterValue", "AuthorizationError", "AuthorizationErrorException",
    "InvalidClientTokenId", "AccessDenied", "AccessDeniedException"})


class Sns:
    """Publishes alerts to one SNS topic with a boto3 ``client``."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client, self._topic_arn = client, topic_arn
        self._fifo = topic_arn.endswith(".fifo")

    def send(self, alert: Alert, raw: bytes) -> None:
        """Publish one alert; raises DeliveryFailed (not retryable for permanent errors)."""
        key = delivery_key(alert)
        subject = "".join(c for c in f"[{alert['severity']}] {alert['title']}"
                          if " " <= c <= "~")[:100]
        args: dict[str, Any] = {
            "TopicArn": self._topic_arn, "Message": alert_json(alert).decode(),
            "Subject": subject,
            "MessageAttributes": {n: {"DataType": "String", "StringValue": str(v)}
                                  for n, v in (("delivery_key", key),
                                               ("severity", alert["severity"]),
                                               ("rule_id", alert["rule_id"]))}}
        if self._fifo:
            args |= {"MessageGroupId": alert["alert_id"], "MessageDeduplicationId": key}
        try:
            self._client.publish(**args)
        except Exception as exc:  # botocore raises many types; classify by error code
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            raise DeliveryFailed(f"SNS publish: {type(exc).__name__}: {exc}",
                                 retryable=code not in PERMANENT_SNS_ERRORS) from None

    def close(self) -> None:
        return None


class KafkaTopic:
    """Produces alerts to one route's topic with an idempotent producer."""

    def __init__(self, producer_conf: Mapping[str, Any], topic: str, timeout_s: float) -> None:
        self._producer = KafkaProducer(producer_conf)
        self._topic, self._timeout_s = topic, timeout_s

    def send(self, alert: Alert, raw: bytes) -> None:
        """Produce one alert and wait for its acknowledgement; raises DeliveryFailed."""
        key = delivery_key(alert).encode()
        self._producer.produce(self._topic, alert_json(alert), key,
                               [("delivery-key", key)])
        try:
            self._producer.flush(self._timeout_s, what="alerts")
        except DeliveryError as exc:
            raise DeliveryFailed(f"Kafka topic {self._topic}: {exc}") from None

    def close(self) -> None:
        self._producer.close(self._timeout_s)
