"""``[replay]``: how ``trailpipe replay`` reads the events topic (``[topics] events``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReplayConfig(BaseModel):
    """Hot-path (Kafka) replay settings. The replay never joins a consumer group and never
    commits, so it has no group setting; a throwaway ``group.id`` is made per run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lateness_ms: int = Field(default=3_600_000, ge=0, description="lateness margin L: each "
                             "partition is read from offsets_for_times(from - L), so records "
                             "appended up to L after later-timed ones are still found")
    batch_size: int = Field(default=10_000, ge=1, description="records per consume() call")
    poll_timeout_ms: int = Field(default=1_000, ge=10, description="wait of one consume() call")
    idle_timeout_ms: int = Field(default=60_000, ge=100, description="give up (exit 1) when no "
                                 "record nor end-of-partition arrived for this long")
    metadata_timeout_ms: int = Field(default=10_000, ge=100, description="wait for topic "
                                     "metadata, watermarks and offsets_for_times")
