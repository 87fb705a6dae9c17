"""A role in one account assumed by a principal of another account. Cross-account access is
normal inside an organisation; this rule records each new (caller, role) pair once a day so
an unexpected one stands out. AWS services assuming roles are left out."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service, principal, succeeded


def _role_account(event: CloudTrailEvent) -> str:
    arn = str(event.deep_get("requestParameters", "roleArn", default=""))
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def detect(event: CloudTrailEvent) -> bool:
    if is_aws_service(event) or not succeeded(event):
        return False
    caller = str(event.deep_get("userIdentity", "accountId", default=""))
    target = _role_account(event)
    return bool(caller and target and caller != target)


def title(event: CloudTrailEvent) -> str:
    role = event.deep_get("requestParameters", "roleArn")
    return f"{principal(event)} assumed {role} across accounts"


def dedup(event: CloudTrailEvent) -> str:
    return f"{principal(event)}|{event.deep_get('requestParameters', 'roleArn')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "roleArn": str(event.deep_get("requestParameters", "roleArn"))}
