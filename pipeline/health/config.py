"""``[health]``: when pipeline health is reported (silent sources, consumer lag, dead letters)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

LAG_GROUP_PREFIX = "trailpipe-"
"""With ``lag_groups`` empty, the lag probe watches every group whose id starts with this."""


class HealthConfig(BaseModel):
    """Thresholds and schedules of the health records on ``[topics] health``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    silent_after_ms: int = Field(default=15 * 60_000, ge=1, description="an (account, region) "
                                 "that sent events and then none for this long is a silent "
                                 "source (logging may be stopped)")
    lag_interval_ms: int = Field(default=30_000, ge=100, description="how often consumer lag "
                                 "is measured")
    lag_threshold_events: int = Field(default=100_000, ge=1, description="a partition whose "
                                      "group is this many records behind the end is lag_high")
    lag_threshold_s: int = Field(default=300, ge=1, description="a partition whose next "
                                 "record to consume is this old (seconds, by its Kafka "
                                 "timestamp) is lag_high")
    lag_report_all: bool = Field(default=True, description="every lag_interval_ms, one "
                                 "status=lag record per group and partition (events and "
                                 "seconds); lag_high/lag_ok are reported either way")
    lag_groups: list[str] = Field(default_factory=list, description="consumer group ids to "
                                  "watch; empty: every group named trailpipe-*")
    dlq_interval_ms: int = Field(default=60_000, ge=100, description="how often the "
                                 "dead-letter topic is read and its rate per source computed")
    dlq_threshold_per_min: float = Field(default=100.0, gt=0, description="dead letters per "
                                         "minute from one source above which it is "
                                         "dlq_rate_high")
