"""``[notifier]``: routes from alerts to destinations (placeholder; filled in by the notifier)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NotifierConfig(BaseModel):
    """The notifier daemon's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(default="trailpipe-notifier", min_length=1)
