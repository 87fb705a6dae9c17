"""Full admin rights granted: an admin managed policy attached to a user, role or group, or
an inline / new default policy version that allows every action on every resource."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_admin_policy, principal, succeeded


def _target(event: CloudTrailEvent) -> str:
    params = event.get("requestParameters") or {}
    for key in ("userName", "roleName", "groupName", "policyArn"):
        if params.get(key):
            return f"{key[:-4] if key != 'policyArn' else 'policy'} {params[key]}"
    return "?"


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event):
        return False
    params = event.get("requestParameters") or {}
    name = str(event.get("eventName"))
    if name.startswith("Attach"):
        return is_admin_policy(str(params.get("policyArn") or ""))
    if name == "CreatePolicyVersion" and params.get("setAsDefault") is not True:
        return False
    return is_admin_policy(params.get("policyDocument"))


def title(event: CloudTrailEvent) -> str:
    return f"Admin permissions granted to {_target(event)} by {principal(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "target": _target(event)}
