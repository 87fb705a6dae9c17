"""An IAM user turned its long-lived key into session credentials (GetSessionToken)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, identity_type, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return identity_type(event) == "IAMUser" and succeeded(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
