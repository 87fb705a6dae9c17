"""The archiver's own Kafka producer: delivery notices (``audit.deliveries.v1``) and health
records (``audit.health.v1``, CloudTrail's "failed logging" signal).

Notices are keyed by object key and are at-least-once: a re-run after a crash re-writes the
same key and notices it again, so the latest notice of a key describes the object (a consumer
keeps the last one per key, as a compacted topic would). Health records are Avro ``Health``
(:mod:`pipeline.health.record`) with the bucket as subject, so keyed ``archiver|<bucket>``; a
failing state is reported at most once per ``health_interval_ms``, and the first success after
failures is reported as ``recovered``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pipeline.health.record import health_datum, health_record
from pipeline.lake.layout import Delivery
from pipeline.logs import get_logger
from pipeline.producer import DeliveryError, KafkaProducer

log = get_logger("consumers.archiver.sink")


class NoticeError(DeliveryError):
    """Delivery notices could not be made durable on Kafka."""


class SnsNotices:
    """Publishes delivery notices to an SNS topic. Best effort, as CloudTrail's own SNS
    notifications: the Kafka notice is the durable record; an SNS failure is logged and
    counted, never fails the flush (the object is already written and committed to be)."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client, self._topic_arn = client, topic_arn
        self.published = 0
        self.failed = 0

    def publish_all(self, notices: list[Delivery]) -> None:
        for notice in notices:
            try:
                self._client.publish(
                    TopicArn=self._topic_arn, Message=notice.to_json().decode(),
                    Subject="trailpipe lake delivery",
                    MessageAttributes={"key": {"DataType": "String", "StringValue": notice.key}})
                self.published += 1
            except Exception as exc:  # best effort: see the class docstring
                self.failed += 1
                log.warning("sns_publish_failed", key=notice.key, error=str(exc))


class Notifier:
    """Produces notices and health records; ``flush`` makes notices durable or raises."""

    def __init__(self, producer_conf: Mapping[str, Any], *, deliveries_topic: str,
                 health_topic: str, lake_url: str, bucket: str, health_interval_ms: int,
                 owner: str, sns: SnsNotices | None = None) -> None:
        self._producer = KafkaProducer(producer_conf)
        self._sns = sns
        self._sns_pending: list[Delivery] = []
        self.deliveries_topic, self.health_topic = deliveries_topic, health_topic
        self._lake_url, self._bucket, self._owner = lake_url, bucket, owner
        self._interval_ms = health_interval_ms
        self._failing_since_ms: int | None = None
        self._last_health_ms = -health_interval_ms
        self._consecutive = 0

    def delivered(self, notice: Delivery) -> None:
        """Queue the notice of one durable object (durable on Kafka after :meth:`flush`)."""
        self._producer.produce(self.deliveries_topic, notice.to_json(), notice.key.encode())
        if self._sns is not None:
            self._sns_pending.append(notice)

    def missing_topics(self, timeout_s: float = 10.0) -> list[str]:
        """The notice and health topics the cluster does not have (a startup check: without
        them every flush would fail). Raises KafkaException when the cluster is unreachable."""
        known = self._producer.client.list_topics(timeout=timeout_s).topics
        return [t for t in (self.deliveries_topic, self.health_topic) if t not in known]

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued notice is acknowledged; raises :class:`NoticeError`."""
        self._producer.flush(timeout_s, what="notices", error=NoticeError)
        if self._sns is not None:
            pending, self._sns_pending = self._sns_pending, []
            self._sns.publish_all(pending)

    def failing(self, error: BaseException, *, key: str | None, stage: str) -> None:
        """Report a failed flush (rate-limited). Never raises: Kafka may be down too."""
        now = time.time_ns() // 1_000_000
        self._consecutive += 1
        if self._failing_since_ms is None:
            self._failing_since_ms = now
        elif now - self._last_health_ms < self._interval_ms:
            return
        self._last_health_ms = now
        self._health("failing", f"{stage} failed: {type(error).__name__}: {error}"[:500], now,
                     stage=stage, metrics={"consecutive_failures": self._consecutive},
                     details={"key": key, "error_type": type(error).__name__,
                              "error_code": getattr(error, "code", None),
                              "error": str(error)[:2000], "since_ms": self._failing_since_ms})

    def recovered(self) -> None:
        """Report the first success after failures (no-op when nothing failed)."""
        if self._failing_since_ms is None:
            return
        now = time.time_ns() // 1_000_000
        self._health("recovered", f"writing to the lake works again after {self._consecutive} "
                     "failed attempts", now, metrics={"failures": self._consecutive},
                     details={"since_ms": self._failing_since_ms})
        self._failing_since_ms, self._consecutive = None, 0
        self._last_health_ms = -self._interval_ms

    def _health(self, status: str, message: str, now_ms: int, *, stage: str | None = None,
                metrics: dict[str, float], details: dict[str, Any]) -> None:
        datum = health_datum("archiver", status, self._bucket, message, stage=stage,
                             metrics=metrics, at_ms=now_ms,
                             details={**details, "lake": self._lake_url, "bucket": self._bucket,
                                      "owner": self._owner})
        log.warning("archiver_health", **datum)
        try:
            self._producer.produce_record(health_record(self.health_topic, datum))
            self._producer.wait(2.0)
        except Exception as exc:  # a health record is best effort; the flush error stands
            log.warning("health_record_failed", error=str(exc))
        # a lost health record must not fail the next notice flush
        self._producer.tracker.take_failures()

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.close(timeout_s)
