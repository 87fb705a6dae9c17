"""Where a retro-hunt's alerts go (``--alerts-out FILE`` or ``--alerts-topic T``).

Contract.

* **File.** One alert per line, canonical JSON (keys sorted at every level, no spaces, UTF-8,
  each line ending in ``\\n``), in the order :func:`pipeline.replay.hunt.hunt` returns them:
  the same alerts give the same bytes. Written to ``FILE.partial`` and renamed, hashed as
  written (:class:`~pipeline.replay.output.HashingWriter`) for a manifest.
* **Topic.** Created like the live alerts topic when missing (its partitions and retention),
  then each alert Avro-encoded as the alerter encodes it
  (:func:`pipeline.rules.alert.encode_alert`), keyed by ``alert_id``, by an idempotent producer
  (:func:`pipeline.kafka.producer_config`). A hunt never writes into the live alerts topic nor
  any topic ``[topics]`` gives a pipeline role nor any ``audit.*`` topic: the replay guard
  (:func:`pipeline.replay.to_topic.target_topic`) decides, and for alerts there is no
  ``--force``.
* **Step.** :func:`run_hunt` is the whole retro-hunt step of a replay: hunt the ordered rows,
  deliver the alerts, return the summary fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from pipeline.config import Config
from pipeline.kafka import producer_config
from pipeline.producer import QUEUE_FULL_POLL_S, DeliveryError, DeliveryTracker
from pipeline.replay.hunt import hunt
from pipeline.replay.manifest import OutputFile
from pipeline.replay.output import HashingWriter
from pipeline.replay.to_topic import ToTopicError, target_topic
from pipeline.rules.alert import encode_alert
from pipeline.rules.ruleset import RuleSet
from pipeline.topics import ensure_topic_like
from pipeline.topics_config import TopicsConfig

_GUARD_REPLAY_ID = "hunt"
"""A valid replay id for the guard, which checks it (the target is always named here)."""


def alert_lines(alerts: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Each alert as one canonical JSON text, in order."""
    return [orjson.dumps(alert, option=orjson.OPT_SORT_KEYS) for alert in alerts]


def write_alerts(alerts: Sequence[Mapping[str, Any]], path: Path) -> OutputFile:
    """Write ``alerts`` as JSON lines to ``path`` (see the module contract); its size and
    SHA-256."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as fh:
        hashing = HashingWriter(fh)
        for line in alert_lines(alerts):
            hashing.write(line + b"\n")
    partial.replace(path)
    return OutputFile(name=path.name, size_bytes=hashing.size_bytes,
                      sha256=hashing.sha.hexdigest())


def alerts_topic(topics: TopicsConfig, requested: str) -> str:
    """``requested`` when a hunt may write alerts there. Raises ToTopicError naming the live
    alerts topic, a pipeline topic or an ``audit.*`` topic."""
    try:
        return target_topic(_GUARD_REPLAY_ID, topics, requested)
    except ToTopicError:
        live = " (the live alerts topic)" if requested == topics.alerts else ""
        raise ToTopicError(f"refusing to write hunt alerts into {requested}{live}: a hunt never "
                           "writes into pipeline topics or audit.* topics; use a replay.* "
                           "topic") from None


def produce_alerts(producer_conf: Mapping[str, Any], topics: TopicsConfig, topic: str,
                   alerts: Sequence[Mapping[str, Any]], *, timeout_s: float) -> int:
    """Produce ``alerts`` into ``topic`` (checked by :func:`alerts_topic` first) and flush;
    the number delivered. ``producer_conf``: :func:`pipeline.kafka.producer_config`'s.
    Raises ToTopicError for a refused topic, DeliveryError when an alert was not delivered."""
    target = alerts_topic(topics, topic)
    producer = Producer(dict(producer_conf))
    tracker = DeliveryTracker()
    for alert in alerts:
        value, key = encode_alert(dict(alert)), str(alert["alert_id"]).encode()
        while True:
            try:
                producer.produce(target, value=value, key=key, on_delivery=tracker.on_delivery)
                break
            except BufferError:
                producer.poll(QUEUE_FULL_POLL_S)
    remaining = producer.flush(timeout_s)
    failures = tracker.take_failures()
    if remaining or failures:
        raise DeliveryError(f"{remaining} hunt alerts undelivered, {len(failures)} failed: "
                            f"{[str(f) for f in failures[:3]]}", remaining, tuple(failures))
    return tracker.delivered


def run_hunt(cfg: Config, kafka_base: Mapping[str, Any], rules: RuleSet, ordered: pa.Table, *,
             alerts_out: Path | None, alerts_to: str | None, timeout_s: float = 30
             ) -> dict[str, Any]:
    """Hunt ``ordered`` (a replay's rows in replay order) with ``rules`` and ``[alerter]``'s
    state settings; write the alerts to ``alerts_out`` and/or produce them to ``alerts_to``
    (created like ``[topics] alerts`` when missing). The summary fields: ``{"hunt": {rules,
    correlations, alerts, alert_updates, hits, late_dropped, rule_errors, alerts_out?,
    alerts_sha256?, alerts_topic?, alerts_produced?}}``. Raises as :func:`produce_alerts`,
    ValueError when the topic must be created and ``[topics] alerts`` does not exist."""
    a = cfg.alerter
    result = hunt(ordered, rules, grace_ms=a.grace_ms, max_keys=a.max_state_keys,
                  sample_size=a.sample_size)
    out: dict[str, Any] = result.summary()
    if alerts_out is not None:
        written = write_alerts(result.alerts, alerts_out)
        out.update(alerts_out=str(alerts_out), alerts_sha256=written.sha256)
    if alerts_to is not None:
        target = alerts_topic(cfg.topics, alerts_to)
        ensure_topic_like(AdminClient(dict(kafka_base)), cfg.topics.alerts, target, timeout_s)
        conf = producer_config(kafka_base, dict(cfg.kafka.extra))
        out.update(alerts_topic=target, alerts_produced=produce_alerts(
            conf, cfg.topics, target, result.alerts, timeout_s=timeout_s))
    return {"hunt": out}
