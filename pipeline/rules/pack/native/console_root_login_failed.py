"""Failed console sign-ins to the root user of an account."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, is_root


def detect(event: CloudTrailEvent) -> bool:
    return is_root(event) and event.deep_get("responseElements", "ConsoleLogin") == "Failure"


def title(event: CloudTrailEvent) -> str:
    return f"Failed root sign-ins to account {account(event)}"


def dedup(event: CloudTrailEvent) -> str:
    return account(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
