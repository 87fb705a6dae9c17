"""The latest alerts for the dashboard of ``trailpipe run``: the alerts topic read by an
``assign()``-only consumer (a throwaway group id; it never joins the group nor commits), from
the last ``keep`` records of each partition when first assigned, so the board shows the newest
alerts whether they were raised in this run or before it.

Only openings count (``update == 0``: the record that pages); an update of an open alert
changes nothing on the board. A value that is not an Alert is skipped and counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from pipeline.kafka import consumer_config
from pipeline.logs import get_logger
from pipeline.rules.alert import AlertDecodeError, decode_alert

log = get_logger("pipeline.supervisor.alert_feed")
METADATA_TIMEOUT_S = 2.0  # polled from the dashboard's loop: a slow answer retries


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert as the dashboard shows it."""

    created_ms: int
    severity: str
    title: str
    account: str

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.created_ms / 1000, UTC)
        where = f" ({self.account})" if self.account else ""
        return f"{at:%H:%M:%S} {self.severity:<8} {self.title}{where}"


def alert_line(datum: Mapping[str, Any]) -> AlertLine:
    """The dashboard line of a decoded Alert datum."""
    return AlertLine(int(datum["created_ms"]), str(datum["severity"]), str(datum["title"]),
                     str(datum.get("account") or ""))


class AlertFeed:
    """Polled by the dashboard thread: :meth:`poll` takes what arrived (never blocks) and
    returns the newest ``keep`` openings, newest last. Until the topic's partitions can be
    described (a topic created a moment ago may not have its leaders yet) each poll tries
    again; ``problem`` holds the latest reason."""

    def __init__(self, kafka_base: Mapping[str, Any], topic: str, keep: int = 5) -> None:
        self.keep = keep
        self.topic = topic
        self.undecodable = 0
        self.problem: str | None = None
        self._assigned = False
        self._latest: list[AlertLine] = []
        conf = consumer_config(kafka_base, f"trailpipe-run-{uuid.uuid4().hex}", {},
                               read_committed=True)
        self._consumer = Consumer(conf)

    def _assign(self) -> bool:
        if not self._assigned:
            try:
                self._consumer.assign(self._starts(self.topic))
            except KafkaException as exc:
                self.problem = str(exc)
                log.debug("alert_feed_not_ready", topic=self.topic, error=self.problem)
            else:
                self._assigned, self.problem = True, None
        return self._assigned

    def _starts(self, topic: str) -> list[TopicPartition]:
        meta = self._consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART,
                                            f"topic {topic} does not exist"))
        starts = []
        for p in meta.partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=METADATA_TIMEOUT_S)
            starts.append(TopicPartition(topic, p, max(low, high - self.keep)))
        return starts

    def poll(self, max_records: int = 1000) -> list[AlertLine]:
        """The newest ``keep`` openings after taking what is there now."""
        if not self._assign():
            return list(self._latest)
        for msg in self._consumer.consume(max_records, 0):
            if msg.error() is not None:
                continue  # partition EOF, a transient error: librdkafka retries on its own
            try:
                datum = decode_alert(msg.value() or b"")
            except AlertDecodeError:
                self.undecodable += 1
                continue
            if datum["update"] == 0:
                self._latest.append(alert_line(datum))
        self._latest = sorted(self._latest, key=lambda a: a.created_ms)[-self.keep:]
        return list(self._latest)

    def close(self) -> None:
        self._consumer.close()
