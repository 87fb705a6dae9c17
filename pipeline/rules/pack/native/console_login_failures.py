"""Failed console sign-ins, grouped per source IP: a burst of them is password guessing or
spraying (one address trying one or many user names)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, actor_name, aws_context


def detect(event: CloudTrailEvent) -> bool:
    return bool(event.deep_get("responseElements", "ConsoleLogin") == "Failure")


def title(event: CloudTrailEvent) -> str:
    return f"Failed console sign-ins from {event.get('sourceIPAddress')}"


def dedup(event: CloudTrailEvent) -> str:
    return str(event.get("sourceIPAddress") or "")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "userName": actor_name(event), "account": account(event)}
