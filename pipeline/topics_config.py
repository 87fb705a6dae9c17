"""``[topics]``: the name of every documented topic and the settings they are created with
(part of the one config tree of :mod:`pipeline.config`, which re-exports these names)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicOverride(_Strict):
    """Per-topic settings; anything left unset falls back to the [topics] defaults."""

    partitions: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    retention_ms: int | None = Field(default=None, ge=-1)
    cleanup_policy: Literal["delete", "compact", "compact,delete"] | None = None
    min_insync_replicas: int | None = Field(default=None, ge=1)


TOPIC_ROLES: tuple[str, ...] = ("events", "dlq", "deliveries", "health", "alerts", "aggregates",
                                "insights", "alerter_hits", "alerter_state", "aggregator_state",
                                "events_json", "alerts_json", "siem_subscriptions")
"""The keys of ``[topics]`` that name a topic."""

COMPACTED_ROLES = frozenset({"alerter_state", "aggregates", "aggregator_state",
                             "siem_subscriptions"})
"""Topics that hold state by key: compacted unless an override says otherwise."""


class TopicsConfig(_Strict):
    """``[topics]``: the name of every documented topic (the one place they are defined; every
    producer and daemon reads them here) and the settings ``trailpipe topics create`` gives
    them: these defaults, then ``overrides`` keyed by topic name. Names must be distinct."""

    events: str = Field(default="audit.events.v1", min_length=1)
    dlq: str = Field(default="audit.dlq.v1", min_length=1)
    deliveries: str = Field(default="audit.deliveries.v1", min_length=1)
    health: str = Field(default="audit.health.v1", min_length=1)
    alerts: str = Field(default="audit.alerts.v1", min_length=1)
    aggregates: str = Field(default="audit.aggregates.v1", min_length=1)
    insights: str = Field(default="audit.insights.v1", min_length=1)
    alerter_hits: str = Field(default="audit.alerter.hits.v1", min_length=1, description=(
        "internal: rule matches keyed by rule and dedup/group key, so every window's state "
        "lives in one partition (the alerter's repartition step)"))
    alerter_state: str = Field(default="audit.alerter.state.v1", min_length=1, description=(
        "internal, compacted: the alerter's window state changelog (same partition count as "
        "alerter_hits)"))
    aggregator_state: str = Field(default="audit.aggregator.state.v1", min_length=1,
                                  description=(
        "internal, compacted: the aggregator's open windows, watermarks and Insights baselines "
        "(at least as many partitions as events)"))
    events_json: str = Field(default="audit.events.json.v1", min_length=1, description=(
        "the mirror: one CloudTrail record per message as CloudTrail's own JSON, keyed and "
        "partitioned like events (what SIEMs subscribe to)"))
    alerts_json: str = Field(default="audit.alerts.json.v1", min_length=1, description=(
        "the mirror of the alerts topic, one alert per message as JSON"))
    siem_subscriptions: str = Field(default="audit.siem.subscriptions.v1", min_length=1,
                                    description=(
        "internal, compacted: one record per SIEM subscription (topics, auth, view), written by "
        "`trailpipe siem`, read by the mirror to serve views"))
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = Field(default=7 * 24 * 3_600_000, ge=-1)
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    min_insync_replicas: int | None = Field(default=None, ge=1)
    overrides: dict[str, TopicOverride] = Field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        """Every documented topic's name, in documentation order (events first)."""
        return tuple(getattr(self, role) for role in TOPIC_ROLES)

    @model_validator(mode="after")
    def _names_distinct(self) -> TopicsConfig:
        names = self.names()
        if len(set(names)) != len(names):
            raise ValueError(f"topic names must be distinct: {', '.join(names)}")
        return self
