"""A SAML identity provider created, changed or deleted. A rogue provider lets an attacker
sign in as any role that trusts it. IAM Identity Center managing its own providers is left
out."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, principal, succeeded


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event) or event.get("sourceIPAddress") == "sso.amazonaws.com":
        return False
    return ":assumed-role/AWSServiceRoleForSSO/" not in principal(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
