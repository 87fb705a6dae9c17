"""An access key created for a different user than the caller: a backdoor key that keeps
working after the attacker's own access is cut."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, caller_names, is_root, principal, succeeded


def _target(event: CloudTrailEvent) -> str:
    return str(event.deep_get("requestParameters", "userName", default=""))


def detect(event: CloudTrailEvent) -> bool:
    target = _target(event)
    if not target or not succeeded(event):
        return False
    return is_root(event) or target not in caller_names(event)


def title(event: CloudTrailEvent) -> str:
    return f"{principal(event)} created an access key for user {_target(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "targetUser": _target(event)}
