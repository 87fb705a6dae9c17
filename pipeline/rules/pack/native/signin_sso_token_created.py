"""An IAM Identity Center (SSO) access token issued through the device-code flow, the flow
that ``aws sso login`` uses and that device-code phishing abuses."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded

_SOURCES = frozenset({"sso.amazonaws.com", "sso-oauth.amazonaws.com", "sso-oidc.amazonaws.com"})


def detect(event: CloudTrailEvent) -> bool:
    if event.get("eventSource") not in _SOURCES or not succeeded(event):
        return False
    grant = str(event.deep_get("requestParameters", "grantType", default=""))
    return grant.endswith("device_code")


def dedup(event: CloudTrailEvent) -> str:
    return str(event.deep_get("userIdentity", "principalId") or event.get("sourceIPAddress"))


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
