"""Calls that enumerate security tooling and defences (detectors, trails, config
recorders, firewalls, security groups...); counted per caller, so only sustained
reconnaissance alerts."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service


def detect(event: CloudTrailEvent) -> bool:
    return not is_aws_service(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
