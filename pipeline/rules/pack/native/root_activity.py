"""The root user signed in or changed something. Reads (Get/List/Describe...) and failed
calls are left out: only root actions with an effect alert. A console sign-in with MFA is
still reported, at a lower severity."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service, is_root, mfa_used, succeeded

_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Search", "BatchGet")
# AWS creates service-linked roles while a root user works in the console; not a root action.
_IGNORED = frozenset({"CreateServiceLinkedRole"})


def detect(event: CloudTrailEvent) -> bool:
    if not is_root(event) or is_aws_service(event) or not succeeded(event):
        return False
    if event.get("readOnly") is True or event.get("eventType") == "AwsServiceEvent":
        return False
    name = str(event.get("eventName") or "")
    if name in _IGNORED or name.startswith(_READ_PREFIXES):
        return False
    # Any sign-in step other than a console login (e.g. an IdP directory login) is noise.
    return event.get("eventSource") != "signin.amazonaws.com" or name == "ConsoleLogin"


def title(event: CloudTrailEvent) -> str:
    return f"Root user {event.get('eventName')} in account {event.get('recipientAccountId')}"


def severity(event: CloudTrailEvent) -> str:
    if event.get("eventName") == "ConsoleLogin" and mfa_used(event):
        return "medium"
    return "high"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
