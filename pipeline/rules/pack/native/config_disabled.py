"""AWS Config stopped recording or lost its delivery channel, so configuration history and
Config rules go blind."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"AWS Config {event.get('eventName')} in {event.get('awsRegion')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
