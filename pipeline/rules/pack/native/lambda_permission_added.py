"""A resource-based permission added to a Lambda function: someone (another account, a
service, or anyone) may now invoke it. A backdoor path when the grantee is outside."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    grantee = named(event, "principal")
    suffix = "" if grantee == "?" else f" for {grantee}"
    return f"Invoke permission added to Lambda {named(event, 'functionName')}{suffix}"


def severity(event: CloudTrailEvent) -> str:
    # Anyone may invoke the function: no longer a routine integration.
    return "medium" if named(event, "principal") == "*" else "low"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "function": named(event, "functionName"),
            "principal": named(event, "principal"), "action": named(event, "action")}
