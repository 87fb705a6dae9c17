"""``[generator.shapes]``: which traffic shapes the generator applies, and their parameters.

Self-contained (pydantic only), so the lead may move it into :mod:`pipeline.config` as it is.
All times are event time in epoch-ms offsets from the generator's first record; a shape's
start is rounded up to a whole minute so its ground truth lines up with 1-minute windows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
BEYOND_MARGIN_MS = 2 * MINUTE_MS
"""A beyond-grace record is held back more than grace + this: its 1-minute window (at most a
minute long) has closed, with a minute to spare for a partition's watermark lagging the
stream's newest event time."""

ShapeName = Literal["api-rate-spike", "error-rate-spike", "account-silent", "late-delivery"]
WriteApi = Literal["ec2:RunInstances", "iam:CreateAccessKey", "ssm:PutParameter"]
"""Write management APIs a spike may use (``service:eventName``); IAM lands in us-east-1."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiRateSpikeConfig(_Strict):
    """One principal calls one write API in one account/region at ``calls_per_min``."""

    start_after_ms: int = Field(default=3 * HOUR_MS, ge=0, description="event time from the "
                                "first record to the spike (a baseline before it)")
    duration_ms: int = Field(default=10 * MINUTE_MS, ge=1000)
    calls_per_min: int = Field(default=60, ge=1, le=60_000)
    api: WriteApi = "ec2:RunInstances"


class ErrorRateSpikeConfig(_Strict):
    """One write API in one account/region called steadily at ``calls_per_min`` for the whole
    run (its baseline), whose calls fail (``failing_share`` of them) during the spike."""

    start_after_ms: int = Field(default=3 * HOUR_MS, ge=0)
    duration_ms: int = Field(default=10 * MINUTE_MS, ge=1000)
    calls_per_min: int = Field(default=10, ge=1, le=60_000, description="the steady rate, the "
                               "same before, during and after the spike (at the default "
                               "failing_share, 8 errors a minute: enough for an error-rate "
                               "insight, which needs a few errors in a minute)")
    failing_share: float = Field(default=0.8, gt=0, le=1, description="calls failing in the "
                                 "spike, with error_code")
    baseline_error_share: float = Field(default=0.02, ge=0, lt=1, description="calls failing "
                                        "outside the spike, with ThrottlingException")
    error_code: str = Field(default="AccessDeniedException", min_length=1)
    api: WriteApi = "ssm:PutParameter"

    @model_validator(mode="after")
    def _spike_above_baseline(self) -> ErrorRateSpikeConfig:
        if self.failing_share <= self.baseline_error_share:
            raise ValueError("failing_share must exceed baseline_error_share")
        return self


class AccountSilentConfig(_Strict):
    """One (account, region) sends nothing for ``silent_ms``, then resumes."""

    start_after_ms: int = Field(default=HOUR_MS, ge=0)
    silent_ms: int = Field(default=30 * MINUTE_MS, ge=1000)


class LateDeliveryConfig(_Strict):
    """A deterministic ``fraction`` of records is delivered late (eventTime unchanged).

    A delayed record is held back until the stream's event time reaches its own plus the
    delay: 1..``max_delay_ms``, or, for ``beyond_fraction`` of the delayed records, more than
    ``grace_ms`` + :data:`BEYOND_MARGIN_MS` (up to ``beyond_max_delay_ms``), so its 1-minute
    window has closed under that grace when it arrives."""

    fraction: float = Field(default=0.05, ge=0, le=1)
    max_delay_ms: int = Field(default=MINUTE_MS, ge=1)
    beyond_fraction: float = Field(default=0.0, ge=0, le=1, description="share of the delayed "
                                   "records held back beyond grace_ms")
    grace_ms: int = Field(default=5 * MINUTE_MS, ge=0, description="the consumers' grace the "
                          "beyond-grace records exceed")
    beyond_max_delay_ms: int = Field(default=30 * MINUTE_MS, ge=1)

    @model_validator(mode="after")
    def _delays_consistent(self) -> LateDeliveryConfig:
        if self.beyond_fraction > 0:
            if self.max_delay_ms > self.grace_ms:
                raise ValueError("max_delay_ms must be <= grace_ms when beyond_fraction > 0 "
                                 "(ordinary delays stay within grace)")
            if self.beyond_max_delay_ms <= self.grace_ms + BEYOND_MARGIN_MS:
                raise ValueError("beyond_max_delay_ms must exceed grace_ms + 120000")
        return self


class ShapesConfig(_Strict):
    """The shapes to apply (``enabled``, each at most once) and their parameters."""

    enabled: list[ShapeName] = Field(default_factory=list, description="traffic shapes over "
                                     "event time; none by default")
    api_rate_spike: ApiRateSpikeConfig = Field(default_factory=ApiRateSpikeConfig)
    error_rate_spike: ErrorRateSpikeConfig = Field(default_factory=ErrorRateSpikeConfig)
    account_silent: AccountSilentConfig = Field(default_factory=AccountSilentConfig)
    late_delivery: LateDeliveryConfig = Field(default_factory=LateDeliveryConfig)

    @model_validator(mode="after")
    def _unique(self) -> ShapesConfig:
        if len(set(self.enabled)) != len(self.enabled):
            raise ValueError("each shape may be enabled once")
        return self
