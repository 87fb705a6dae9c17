"""A person handed an IAM role to new compute: a Lambda function created or re-pointed with
a role, or an EC2 instance launched or re-associated with an instance profile. Whoever
controls the code then acts with the role's rights (iam:PassRole escalation). Calls AWS
services make for themselves (CloudFormation, Auto Scaling) are left out."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service, principal, succeeded


def passed_role(event: CloudTrailEvent) -> str:
    """The role or instance profile handed over, or ``""``."""
    params = event.get("requestParameters") or {}
    if event.get("eventSource") == "lambda.amazonaws.com":
        return str(params.get("role") or "")
    profile = params.get("iamInstanceProfile") or {}
    return str(profile.get("arn") or profile.get("name") or "") if profile else ""


def detect(event: CloudTrailEvent) -> bool:
    if is_aws_service(event) or not succeeded(event):
        return False
    return bool(passed_role(event))


def title(event: CloudTrailEvent) -> str:
    return f"{principal(event)} passed {passed_role(event)} to {event.get('eventName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "passedRole": passed_role(event)}
