"""A KMS key disabled or scheduled for deletion: whatever it encrypts becomes unreadable
(now, or for good once the waiting period ends)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import arn_account, request, response


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def _key(event: CloudTrailEvent) -> str:
    key = str(request(event, "keyId", default="?"))
    # The request may name the key by id, alias or ARN; use the bare id so both calls of
    # one key share an alert.
    return key.rsplit("/", 1)[-1] if arn_account(key) else key


def title(event: CloudTrailEvent) -> str:
    action = "scheduled for deletion" if event.get("eventName") == "ScheduleKeyDeletion" \
        else "disabled"
    return f"KMS key {_key(event)} {action}"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{_key(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "keyId": _key(event),
            "deletionDate": str(response(event, "deletionDate", default="")),
            "pendingWindowInDays": str(request(event, "pendingWindowInDays", default=""))}
