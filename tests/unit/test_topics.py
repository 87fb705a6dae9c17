"""Topic settings resolution from config (pure)."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, load_config
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


def test_the_default_names_are_the_documented_topics() -> None:
    topics = load_config(env={}).topics
    assert (topics.events, topics.dlq, topics.deliveries, topics.health) == (
        "audit.events.v1", "audit.dlq.v1", "audit.deliveries.v1", "audit.health.v1")
    assert topics.names() == DOCUMENTED_TOPICS
    assert DOCUMENTED_TOPICS[4:] == ("audit.alerts.v1", "audit.aggregates.v1",
                                     "audit.insights.v1", "audit.alerter.hits.v1",
                                     "audit.alerter.state.v1", "audit.aggregator.state.v1",
                                     "audit.events.json.v1", "audit.alerts.json.v1",
                                     "audit.siem.subscriptions.v1")


def test_state_changelogs_and_aggregates_are_compacted_and_kept() -> None:
    specs = {s.name: s for s in topic_specs(load_config(env={}).topics)}
    for name in ("audit.alerter.state.v1", "audit.aggregator.state.v1", "audit.aggregates.v1",
                 "audit.siem.subscriptions.v1"):
        assert specs[name].configs == {"retention.ms": "-1", "cleanup.policy": "compact"}
    assert specs["audit.alerter.hits.v1"].configs["cleanup.policy"] == "delete"
    assert specs["audit.insights.v1"].configs["cleanup.policy"] == "delete"
    assert specs["audit.events.json.v1"].configs["cleanup.policy"] == "delete"


def test_a_renamed_topic_is_created_under_its_new_name_with_its_override() -> None:
    cfg = load_config(env={"TRAILPIPE_TOPICS__EVENTS": "acme.events.v2"}, overrides={
        "topics.overrides": {"acme.events.v2": {"partitions": 12}}})
    specs = {s.name: s for s in topic_specs(cfg.topics)}
    assert "audit.events.v1" not in specs
    assert specs["acme.events.v2"].partitions == 12
    assert specs["audit.dlq.v1"].partitions == 6


def test_topic_names_must_be_distinct() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={"topics.health": "audit.deliveries.v1"})
    assert info.value.errors[0].startswith("topics: Value error, topic names must be distinct")
