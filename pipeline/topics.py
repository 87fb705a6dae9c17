"""The documented topics, created idempotently from config, with drift reported.

Topic names follow ``<domain>.<entity>.v<major>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from pipeline.topics_config import COMPACTED_ROLES, TOPIC_ROLES, TopicOverride, TopicsConfig

DOCUMENTED_TOPICS: tuple[str, ...] = TopicsConfig().names()
"""The documented topics under their default names; a config may rename them
(:meth:`TopicsConfig.names` gives a config's names)."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class TopicResult:
    """What ``ensure_topics`` did for one topic: ``created``, ``exists`` or ``drift``."""

    name: str
    status: str
    drift: tuple[str, ...] = ()


def topic_specs(config: TopicsConfig) -> list[TopicSpec]:
    """Resolve the settings of every topic ``config`` names: the [topics] defaults, then the
    topic's override."""
    specs = []
    defaults = config.model_dump(include=set(TopicOverride.model_fields))
    for role, name in zip(TOPIC_ROLES, config.names(), strict=True):
        merged = dict(defaults)
        if role in COMPACTED_ROLES:
            merged["cleanup_policy"] = "compact"
            merged["retention_ms"] = -1
        override = config.overrides.get(name)
        if override is not None:
            merged.update(override.model_dump(exclude_none=True))
        configs = {"retention.ms": str(merged["retention_ms"]),
                   "cleanup.policy": str(merged["cleanup_policy"])}
        if merged["min_insync_replicas"] is not None:
            configs["min.insync.replicas"] = str(merged["min_insync_replicas"])
        specs.append(TopicSpec(name, merged["partitions"], merged["replication_factor"], configs))
    return specs


def ensure_topics(admin: AdminClient, specs: list[TopicSpec],
                  timeout_s: float = 30) -> list[TopicResult]:
    """Create missing topics; for existing ones compare partitions, replication and configs.

    Idempotent. Raises KafkaException when a creation fails for any reason but "exists".
    """
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=s.configs)
             for s in missing], operation_timeout=timeout_s)
        for fut in futures.values():
            try:
                fut.result()
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    results = [TopicResult(s.name, "created") for s in missing]
    present = [s for s in specs if s.name in existing]
    for spec in present:
        drift = _drift(admin, spec, existing[spec.name], timeout_s)
        results.append(TopicResult(spec.name, "drift" if drift else "exists", drift))
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(results, key=lambda r: order[r.name])


def _drift(admin: AdminClient, spec: TopicSpec, meta: Any, timeout_s: float) -> tuple[str, ...]:
    """Human-readable differences between what a topic has and what config wants."""
    out = []
    partitions = len(meta.partitions)
    if partitions != spec.partitions:
        out.append(f"partitions: has {partitions}, config wants {spec.partitions}")
    replicas = min((len(p.replicas) for p in meta.partitions.values()), default=0)
    if replicas != spec.replication_factor:
        out.append(f"replication_factor: has {replicas}, config wants {spec.replication_factor}")
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    actual = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    for key, want in spec.configs.items():
        have = actual[key].value if key in actual else None
        if have != want:
            out.append(f"{key}: has {have}, config wants {want}")
    return tuple(out)


def ensure_topic_like(admin: AdminClient, source: str, topic: str,
                      timeout_s: float = 30) -> bool:
    """Create ``topic`` with ``source``'s partition count, replication and retention unless
    it exists (so keys land in the same partitions); True when created. Raises ValueError
    when ``source`` does not exist, KafkaException when the creation fails otherwise."""
    topics = admin.list_topics(timeout=timeout_s).topics
    if topic in topics and topics[topic].error is None:
        return False
    meta = topics.get(source)
    if meta is None or meta.error is not None or not meta.partitions:
        raise ValueError(f"topic {source} does not exist (a new topic copies its partitions "
                         "and retention): run `trailpipe topics create`")
    resource = ConfigResource(ConfigResource.Type.TOPIC, source)
    configs = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    replicas = min(len(p.replicas) for p in meta.partitions.values())
    new = NewTopic(topic, len(meta.partitions), replicas,
                   config={"retention.ms": configs["retention.ms"].value})
    try:
        admin.create_topics([new], operation_timeout=timeout_s)[topic].result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise
        return False
    return True
