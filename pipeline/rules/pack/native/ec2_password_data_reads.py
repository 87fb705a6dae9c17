"""Windows administrator password data requested (GetPasswordData); many requests by one
caller look like harvesting. Denied requests count too."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service
from pipeline.rules.pack.native._resources import named


def detect(event: CloudTrailEvent) -> bool:
    return not is_aws_service(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "instanceId": named(event, "instanceId")}
