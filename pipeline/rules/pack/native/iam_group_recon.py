"""Reads of IAM groups and their policies: who is in which group with which rights."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)
