"""Someone checked what the account can send through SES: its verified identities, whether
sending is on, and the quota. Spammers and phishers look here after stealing keys. Trusted
Advisor's own checks are left out."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event):
        return False
    return bool(event.get("sourceIPAddress") != "trustedadvisor.amazonaws.com")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
