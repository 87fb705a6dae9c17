"""A new IAM role was created."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"IAM role {event.deep_get('requestParameters', 'roleName', default='?')} created"
