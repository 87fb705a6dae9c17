"""``[aggregator]``: windows, lateness, outputs and Insights of ``trailpipe consume aggregator``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipeline.insights.config import InsightsConfig


class AggregatorConfig(BaseModel):
    """The aggregator daemon (1-minute and 1-hour windows by event time, Insights, health)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(default="trailpipe-aggregator", min_length=1)
    grace_ms: int = Field(default=5 * 60_000, ge=0, description="how far (event time) behind "
                          "the newest event of its partition an event may arrive and still count "
                          "in its window; a window is emitted once the partition's watermark "
                          "(max event time - grace) passes its end; later events become "
                          "corrections")
    max_values: int = Field(default=10_000, ge=1, description="principals or source IPs listed "
                            "per aggregate record at most; beyond it the lists are left empty "
                            "(distinct counts stay exact)")
    lake: bool = Field(default=True, description="also write the aggregates to the lake "
                       "([storage] lake) under aggregates/")
    commit_interval_ms: int = Field(default=2_000, ge=10, description="transaction length: "
                                    "outputs, state changelog and offsets commit together")
    transactional_id: str | None = Field(default=None, description="default: "
                                         "trailpipe-aggregator-<hostname>")
    insights: InsightsConfig = Field(default_factory=InsightsConfig)
