"""The root user created an access key for itself: long-lived root credentials."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_root, succeeded


def detect(event: CloudTrailEvent) -> bool:
    # With a userName the key is for an IAM user (another rule's business).
    own = not event.deep_get("requestParameters", "userName")
    return is_root(event) and own and succeeded(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
