"""A federation sign-in token requested outside the SSO portal: tools such as aws_consoler
turn stolen CLI credentials into a console session this way."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, principal, succeeded


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event):
        return False
    # The SSO portal's own requests come from Identity Center roles with its Java client.
    if ":assumed-role/AWSReservedSSO_" in principal(event):
        return False
    return not str(event.get("userAgent") or "").startswith("Jersey/")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
