"""EC2 instances launched, terminated, started, stopped, rebooted or modified by a role
session directly, not by an AWS service (Auto Scaling, EKS, ...) acting for it."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, identity_type, is_aws_service, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return (succeeded(event) and identity_type(event) == "AssumedRole"
            and not is_aws_service(event))


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
