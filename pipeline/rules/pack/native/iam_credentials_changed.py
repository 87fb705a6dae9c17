"""A password, console login profile, access key or user was created or changed."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)
