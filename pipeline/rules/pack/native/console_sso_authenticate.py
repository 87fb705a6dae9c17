"""A user authenticated to IAM Identity Center (the start of an SSO console session)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import succeeded


def detect(event: CloudTrailEvent) -> bool:
    return event.get("eventSource") == "sso.amazonaws.com" and succeeded(event)


def dedup(event: CloudTrailEvent) -> str:
    return str(event.deep_get("userIdentity", "principalId") or event.get("sourceIPAddress")
               or event.get("recipientAccountId") or "")
