"""GuardDuty turned off or blinded: detector deleted or disabled, members removed,
findings exported nowhere, or a filter that auto-archives findings."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded

_ALWAYS = frozenset({"DeleteDetector", "DisassociateFromMasterAccount",
                     "DisassociateFromAdministratorAccount", "DisassociateMembers",
                     "DeleteMembers", "StopMonitoringMembers", "DeletePublishingDestination"})


def detect(event: CloudTrailEvent) -> bool:
    if event.get("eventSource") != "guardduty.amazonaws.com" or not succeeded(event):
        return False
    name = event.get("eventName")
    if name in _ALWAYS:
        return True
    if name == "UpdateDetector":
        return event.deep_get("requestParameters", "enable") is False
    # CreateFilter / UpdateFilter with action ARCHIVE hides matching findings from view.
    return str(event.deep_get("requestParameters", "action", default="")).upper() == "ARCHIVE"


def title(event: CloudTrailEvent) -> str:
    return f"GuardDuty {event.get('eventName')} in {event.get('awsRegion')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
