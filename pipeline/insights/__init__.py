"""Self-hosted CloudTrail Insights: per-key baselines of the API call and error rates, a
documented statistical test (:mod:`pipeline.insights.detector`), and events in AWS's shape."""

from pipeline.insights.baseline import MinuteStats
from pipeline.insights.codec import InsightStateError
from pipeline.insights.config import InsightsConfig
from pipeline.insights.engine import InsightEngine
from pipeline.insights.event import (
    CALL_RATE,
    ERROR_RATE,
    InsightKey,
    insight_event,
    validate_insight,
)

__all__ = ["CALL_RATE", "ERROR_RATE", "InsightEngine", "InsightKey", "InsightStateError",
           "InsightsConfig", "MinuteStats", "insight_event", "validate_insight"]
