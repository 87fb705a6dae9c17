"""An RDS database activity stream stopped: the database's own audit feed goes dark."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def title(event: CloudTrailEvent) -> str:
    return f"RDS activity stream stopped on {named(event, 'resourceArn')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "resource": named(event, "resourceArn")}
