"""GetCallerIdentity from the TruffleHog secret scanner: someone is checking whether an
access key of this account found in the wild still works."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context


def detect(event: CloudTrailEvent) -> bool:
    return "trufflehog" in str(event.get("userAgent") or "").lower()


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "accessKeyId": str(event.deep_get("userIdentity", "accessKeyId"))}
