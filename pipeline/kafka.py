"""librdkafka client settings built from config (dead letters: :mod:`pipeline.deadletter`;
the producer wrapper and delivery tracking: :mod:`pipeline.producer`).

Every Kafka client in trailpipe is configured here so security settings and the murmur2
partitioner are set in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.config import KafkaConfig, SslConfig
from pipeline.logs import kafka_logger


def base_client_config(kafka: KafkaConfig, bootstrap: str) -> dict[str, Any]:
    """Settings shared by producers, consumers and admin clients."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": kafka.client_id,
        "security.protocol": kafka.security_protocol,
        "logger": kafka_logger(),
    }
    if kafka.sasl is not None:
        conf["sasl.mechanism"] = kafka.sasl.mechanism
        conf["sasl.username"] = kafka.sasl.username
        conf["sasl.password"] = kafka.sasl.password.get_secret_value()
    if kafka.ssl is not None:
        conf.update(ssl_client_config(kafka.ssl))
    return conf


def ssl_client_config(ssl: SslConfig) -> dict[str, Any]:
    """librdkafka's ``ssl.*`` settings for ``ssl`` (only the ones that are set)."""
    conf: dict[str, Any] = {"ssl.endpoint.identification.algorithm":
                            "https" if ssl.endpoint_identification else "none"}
    paths = {"ssl.ca.location": ssl.ca_location,
             "ssl.certificate.location": ssl.certificate_location,
             "ssl.key.location": ssl.key_location}
    conf.update({k: str(v) for k, v in paths.items() if v is not None})
    if ssl.key_password is not None:
        conf["ssl.key.password"] = ssl.key_password.get_secret_value()
    return conf


def producer_config(base: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    """An idempotent, acks=all producer using the Java-compatible murmur2 partitioner."""
    conf = {
        **base,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "compression.type": "zstd",
        "linger.ms": 20,
        "batch.size": 1_000_000,
    }
    conf.update(extra)
    return conf


def consumer_config(
    base: Mapping[str, Any], group_id: str, extra: Mapping[str, str], *, read_committed: bool
) -> dict[str, Any]:
    """A consumer that never commits or stores offsets by itself (the Runner does)."""
    conf = {
        **base,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        # librdkafka backs off fetching for 1 s once its local queue is full; a Python consumer
        # that is slower than the fetcher then starves. Short backoff keeps the queue fed.
        "fetch.queue.backoff.ms": 20,
    }
    conf.update(extra)
    return conf
