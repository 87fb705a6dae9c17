"""Security Hub turned off or its standards and integrations disabled."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return event.get("eventSource") == "securityhub.amazonaws.com" and succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"Security Hub {event.get('eventName')} in {event.get('awsRegion')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
