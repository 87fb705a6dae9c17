"""Amazon Macie disabled, paused or its findings and scans tampered with."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded

_SOURCES = frozenset({"macie.amazonaws.com", "macie2.amazonaws.com"})


def detect(event: CloudTrailEvent) -> bool:
    return event.get("eventSource") in _SOURCES and succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"Macie {event.get('eventName')} in {event.get('awsRegion')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
