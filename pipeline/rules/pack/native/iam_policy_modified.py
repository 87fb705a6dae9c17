"""An IAM policy was created, deleted, attached, detached or given a new version."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)
