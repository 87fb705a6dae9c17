"""EBS encryption by default switched off for a region: new volumes may be created
unencrypted from now on."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"EBS encryption by default disabled in {event.get('awsRegion')}"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{event.get('awsRegion')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
