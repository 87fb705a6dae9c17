"""A console password set for another user without forcing a reset: whoever set it can
sign in as that user."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, caller_names, principal, succeeded


def _target(event: CloudTrailEvent) -> str:
    return str(event.deep_get("requestParameters", "userName", default=""))


def detect(event: CloudTrailEvent) -> bool:
    target = _target(event)
    if not target or not succeeded(event) or target in caller_names(event):
        return False
    return event.deep_get("requestParameters", "passwordResetRequired") is not True


def title(event: CloudTrailEvent) -> str:
    return f"{principal(event)} set the console password of user {_target(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "targetUser": _target(event)}
