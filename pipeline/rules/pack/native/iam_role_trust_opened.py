"""A role's trust policy lets anyone assume it (``Principal: "*"`` or ``{"AWS": "*"}``):
conditions such as an external id are all that stand between the role and the internet."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, document_principals, succeeded


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event):
        return False
    params = event.get("requestParameters") or {}
    document = params.get("policyDocument") or params.get("assumeRolePolicyDocument")
    return "*" in document_principals(document)


def title(event: CloudTrailEvent) -> str:
    role = event.deep_get("requestParameters", "roleName", default="?")
    return f"Role {role} can now be assumed by any principal"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
