"""A WAF web ACL detached from the load balancer, API, CloudFront distribution or AppSync
API it protected: the application is exposed without its filtering."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"WAF web ACL removed from {named(event, 'resourceArn')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "resource": named(event, "resourceArn")}
