"""An opt-in region was enabled for the account."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def _region(event: CloudTrailEvent) -> str:
    params = event.get("requestParameters") or {}
    return str(params.get("RegionName") or params.get("regionName") or "?")


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"Region {_region(event)} enabled in account {event.get('recipientAccountId')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "enabledRegion": _region(event)}
