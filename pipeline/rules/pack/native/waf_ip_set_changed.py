"""An IP set created or updated in GuardDuty (a trusted-IP list silences findings about
those addresses) or WAF (allow/block lists)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    service = str(event.get("eventSource") or "?").split(".", 1)[0]
    return f"{service} IP set changed ({event.get('eventName')})"


def severity(event: CloudTrailEvent) -> str:
    # A GuardDuty trusted-IP list blinds the detector for those addresses.
    return "high" if str(event.get("eventSource")) == "guardduty.amazonaws.com" else "low"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
