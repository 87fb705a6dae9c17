"""Reads of account details and contacts (Organizations, Account, billing console)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)
