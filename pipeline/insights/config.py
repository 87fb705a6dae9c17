"""``InsightsConfig``: the self-hosted CloudTrail Insights engine (nested in the aggregator's
config). Why the defaults are what they are: see :mod:`pipeline.insights.detector`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


class InsightsConfig(BaseModel):
    """Baseline learning and the two statistical tests (API call rate, API error rate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    baseline_ms: int = Field(default=7 * DAY_MS, ge=7 * MINUTE_MS, description="how far back "
                             "the baseline reaches (rolling, in buckets of baseline_ms / 7 whole "
                             "minutes, so the baseline is the last baseline_ms rounded up to a "
                             "whole bucket, as AWS rounds its 7 days to whole days)")
    learn_ms: int | None = Field(default=None, ge=0, description="history a key needs before "
                                 "an insight can start; default baseline_ms")
    z: float = Field(default=6.0, gt=0, description="call-rate test threshold, in standard "
                     "deviations (and the matching Poisson tail probability)")
    std_floor: float = Field(default=1.0, ge=0, description="smallest standard deviation the "
                             "call-rate test uses, in calls per minute")
    min_calls: int = Field(default=10, ge=1, description="a call-rate insight needs at least "
                           "this many calls in the minute")
    error_z: float = Field(default=6.0, gt=0, description="error-rate test threshold, in "
                           "standard deviations of the binomial (and its matching tail "
                           "probability)")
    min_errors: int = Field(default=5, ge=1, description="an error-rate insight needs at least "
                            "this many errors in the minute")
    min_rate_delta: float = Field(default=0.1, ge=0, le=1, description="and an error rate at "
                                  "least this much above the baseline's (0.1 = 10 points)")
    end_after_minutes: int = Field(default=3, ge=1, description="an insight ends after this "
                                   "many consecutive normal minutes")
    max_keys: int = Field(default=200_000, ge=1, description="(account, region, eventSource, "
                          "eventName) keys per engine; the least recently active idle key is "
                          "forgotten beyond it")
    attribution_keep: int = Field(default=50, ge=5, description="values kept per attribute "
                                  "(userIdentityArn, userAgent, errorCode) per baseline bucket")

    @property
    def learn_period_ms(self) -> int:
        """History a key needs before an insight can start."""
        return self.baseline_ms if self.learn_ms is None else self.learn_ms

    @property
    def bucket_ms(self) -> int:
        """Width of a baseline bucket: baseline_ms / 7 in whole minutes (a day by default)."""
        return self.baseline_ms // 7 // MINUTE_MS * MINUTE_MS
