"""``[alerter]``: which rules run and how the alerter keeps state."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AlerterConfig(BaseModel):
    """The alerter daemon and ``trailpipe rules``. The default pack is on unless
    ``default_pack = false``; ``sigma_paths`` and ``native_paths`` add rule directories."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(default="trailpipe-alerter", min_length=1)
    default_pack: bool = True
    sigma_paths: list[Path] = Field(default_factory=list, description="directories (or files) "
                                    "of Sigma rules, searched recursively for *.yml")
    native_paths: list[Path] = Field(default_factory=list, description="directories of native "
                                     "rules (<name>.py + <name>.yml)")
    disabled: list[str] = Field(default_factory=list, description="rule ids not to run")
    grace_ms: int = Field(default=15 * 60_000, ge=0, description="how late (event time, behind "
                          "the newest seen) a match may arrive and still count in a window")
    max_state_keys: int = Field(default=1_000_000, ge=1, description="per hits partition; the "
                                "oldest keys (by event time) are evicted beyond it")
    sample_size: int = Field(default=10, ge=1, le=1000, description="eventIDs kept per alert")
    commit_interval_ms: int = Field(default=50, ge=10, description="transaction length; "
                                    "bounds the time from event to committed alert")
    transactional_id: str | None = Field(default=None, description="default: "
                                         "trailpipe-alerter-<hostname>")
