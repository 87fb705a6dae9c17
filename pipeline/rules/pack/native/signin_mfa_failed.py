"""A console sign-in that failed although MFA was used: the password was right (or
guessed) and the second factor stopped it."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context


def detect(event: CloudTrailEvent) -> bool:
    mfa = str(event.deep_get("additionalEventData", "MFAUsed", default="")).lower() == "yes"
    return mfa and event.deep_get("responseElements", "ConsoleLogin") == "Failure"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
