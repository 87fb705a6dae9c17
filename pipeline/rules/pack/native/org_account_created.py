"""A new member account was created in the organization (the asynchronous result event)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent


def detect(event: CloudTrailEvent) -> bool:
    state = event.deep_get("serviceEventDetails", "createAccountStatus", "state", default="")
    return bool(state == "SUCCEEDED")


def title(event: CloudTrailEvent) -> str:
    status = event.deep_get("serviceEventDetails", "createAccountStatus", default={})
    return f"AWS account {status.get('accountId', '?')} created in the organization"
