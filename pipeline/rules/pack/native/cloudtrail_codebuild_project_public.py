"""A CodeBuild project's builds (logs and artifacts) made readable by anyone."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    visibility = event.deep_get("requestParameters", "projectVisibility", default="")
    return visibility == "PUBLIC_READ" and succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"CodeBuild project {event.deep_get('requestParameters', 'projectArn')} made public"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
