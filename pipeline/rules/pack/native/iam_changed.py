"""Any successful change to IAM (anything but reads): a measure of how much an account's
identity setup moves."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded

_READS = ("Get", "List", "Describe", "Generate", "Simulate")


def detect(event: CloudTrailEvent) -> bool:
    if event.get("eventSource") != "iam.amazonaws.com" or not succeeded(event):
        return False
    return event.get("readOnly") is not True and not str(event.get("eventName")).startswith(_READS)


def dedup(event: CloudTrailEvent) -> str:
    return str(event.get("recipientAccountId") or "")
