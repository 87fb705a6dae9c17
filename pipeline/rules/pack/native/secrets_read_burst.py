"""Secrets Manager values read (or attempted); counted per caller, so a sweep across many
secrets alerts while an application reading its own few does not."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service
from pipeline.rules.pack.native._resources import named


def detect(event: CloudTrailEvent) -> bool:
    # Denied reads count: probing for readable secrets is the same behaviour.
    return not is_aws_service(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "secretId": named(event, "secretId")}
