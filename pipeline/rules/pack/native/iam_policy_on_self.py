"""A principal widened its own permissions: a user attaching or writing a policy on itself
or joining a group, or a role session changing the policies of its own role."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import (
    aws_context,
    caller_names,
    identity_type,
    principal,
    succeeded,
)

_USER_CALLS = frozenset({"AttachUserPolicy", "PutUserPolicy", "AddUserToGroup"})


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event):
        return False
    params = event.get("requestParameters") or {}
    kind = identity_type(event)
    if event.get("eventName") in _USER_CALLS:
        return kind == "IAMUser" and params.get("userName") in caller_names(event)
    own_role = event.deep_get("userIdentity", "sessionContext", "sessionIssuer", "userName")
    return kind == "AssumedRole" and bool(own_role) and params.get("roleName") == own_role


def title(event: CloudTrailEvent) -> str:
    return f"{principal(event)} changed its own permissions ({event.get('eventName')})"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
