"""A trail was created, re-configured or (re)started. Not an attack by itself, but a change
of where and what the account logs."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    trail = event.deep_get("requestParameters", "name", default="?")
    return f"CloudTrail {event.get('eventName')} on {trail}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
