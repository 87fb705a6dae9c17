"""The root user's console password was changed."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_root


def detect(event: CloudTrailEvent) -> bool:
    return is_root(event) and event.deep_get("responseElements", "PasswordUpdated") == "Success"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
