"""A new IAM user was created."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded


def _user(event: CloudTrailEvent) -> str:
    return str(event.deep_get("requestParameters", "userName")
               or event.deep_get("responseElements", "user", "userName") or "?")


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"IAM user {_user(event)} created"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "newUser": _user(event)}
