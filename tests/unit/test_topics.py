"""Topic settings resolution from config (pure)."""

from __future__ import annotations

from pipeline.config import load_config
from pipeline.topics import DOCUMENTED_TOPICS, topic_specs


def test_every_documented_topic_gets_defaults_and_overrides() -> None:
    cfg = load_config(env={}, overrides={
        "topics.partitions": 4,
        "topics.overrides": {"audit.dlq.v1": {"retention_ms": 123, "partitions": 1},
                             "audit.insights.v1": {"cleanup_policy": "compact"}},
    })
    specs = {s.name: s for s in topic_specs(cfg.topics)}
    assert tuple(specs) == DOCUMENTED_TOPICS
    assert specs["audit.events.v1"].partitions == 4
    assert specs["audit.events.v1"].configs == {"retention.ms": str(7 * 24 * 3_600_000),
                                                "cleanup.policy": "delete"}
    assert specs["audit.dlq.v1"].partitions == 1
    assert specs["audit.dlq.v1"].configs["retention.ms"] == "123"
    assert specs["audit.insights.v1"].configs["cleanup.policy"] == "compact"


def test_min_insync_replicas_only_when_set() -> None:
    cfg = load_config(env={}, overrides={"topics.min_insync_replicas": 2,
                                         "topics.replication_factor": 3})
    spec = topic_specs(cfg.topics)[0]
    assert spec.replication_factor == 3
    assert spec.configs["min.insync.replicas"] == "2"
