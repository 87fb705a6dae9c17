"""How a producer daemon is built from the config: the one place ``[producer]``,
``[topics]`` and ``[schema_registry]`` become a :class:`~producers.publisher.Publisher`."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from pipeline.config import Config
from pipeline.events.confluent import ConfluentCodec, registry_client_conf
from pipeline.kafka import base_client_config, producer_config
from producers.publisher import Publisher


def publisher_for(cfg: Config, bootstrap: str, source: str, *,
                  on_kafka_error: Callable[[Any], None] | None = None) -> Publisher:
    """The Publisher of one producer daemon (``source`` names it in ingest metadata and dead
    letters). ``on_kafka_error`` becomes librdkafka's ``error_cb`` (the metrics count the
    errors). With ``[schema_registry] url`` it writes the Confluent wire format and registers
    (or looks up) the schema first: raises RegistryError when the registry refuses."""
    p = cfg.producer
    conf = producer_config(base_client_config(cfg.kafka, bootstrap), {
        "compression.type": p.compression, "linger.ms": str(p.linger_ms),
        "batch.size": str(p.batch_bytes), "delivery.timeout.ms": str(p.delivery_timeout_ms),
        **cfg.kafka.extra})
    if on_kafka_error is not None:
        conf["error_cb"] = on_kafka_error
    producer_id = p.producer_id or f"{socket.gethostname()}-{os.getpid()}"
    extra = _confluent_encoding(cfg) if cfg.schema_registry.url else {}
    return Publisher(conf, events_topic=cfg.topics.events, dlq_topic=cfg.topics.dlq,
                     source=source, producer_id=producer_id, **extra)


def _confluent_encoding(cfg: Config) -> dict[str, Any]:
    sr = cfg.schema_registry
    conf = registry_client_conf(sr)
    codec = ConfluentCodec.for_topic(conf.pop("url"), cfg.topics.events,
                                     auto_register=sr.auto_register, client_conf=conf or None)
    schema_id = codec.register()
    headers = [("content-type", b"application/vnd.confluent.avro"),
               ("x-schema-id", str(schema_id).encode())]
    return {"encoder": codec.encode, "headers": headers}
