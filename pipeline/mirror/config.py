"""``[mirror]``: the JSON mirror daemon (``trailpipe consume mirror``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MirrorConfig(BaseModel):
    """The mirror: ``[topics] events`` -> ``[topics] events_json`` (and alerts -> alerts_json),
    plus every SIEM view registered on ``[topics] siem_subscriptions``, exactly once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(default="trailpipe-mirror", min_length=1)
    alerts: bool = Field(default=True, description="also mirror the alerts topic to "
                         "[topics] alerts_json")
    views: bool = Field(default=True, description="serve the per-SIEM views registered by "
                        "`trailpipe siem subscribe` (one pass over the events for all views)")
    views_refresh_ms: int = Field(default=10_000, ge=100, description="how often the "
                                  "subscriptions topic is re-read for new, changed or revoked "
                                  "views")
    commit_interval_ms: int = Field(default=1_000, ge=10, description="transaction length: "
                                    "mirrored records and consumed offsets commit together")
    transactional_id: str | None = Field(default=None, description="default: "
                                         "trailpipe-mirror-<hostname>")
