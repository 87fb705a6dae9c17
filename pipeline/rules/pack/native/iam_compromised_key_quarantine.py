"""AWS quarantined an access key it found exposed: it attaches its
AWSCompromisedKeyQuarantine policy (or, formerly, an inline AWSExposedCredentialPolicy) to
the key's user."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded

_NAMES = ("AWSCompromisedKeyQuarantine", "AWSExposedCredentialPolicy")


def detect(event: CloudTrailEvent) -> bool:
    params = event.get("requestParameters") or {}
    if not params or not succeeded(event):
        return False
    name = str(params.get("policyName") or str(params.get("policyArn") or "").rsplit("/", 1)[-1])
    return name.startswith(_NAMES)


def title(event: CloudTrailEvent) -> str:
    user = event.deep_get("requestParameters", "userName", default="?")
    return f"AWS quarantined an exposed access key of user {user}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
