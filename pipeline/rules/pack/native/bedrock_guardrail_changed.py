"""A Bedrock guardrail updated or deleted."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    guardrail = event.deep_get("requestParameters", "guardrailIdentifier", default="?")
    return f"Bedrock guardrail {guardrail}: {event.get('eventName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
