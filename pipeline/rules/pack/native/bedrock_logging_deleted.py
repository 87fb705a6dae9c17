"""Bedrock model-invocation logging turned off."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
