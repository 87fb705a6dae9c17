"""An AMI's launch permission or an EBS snapshot's volume-creation permission granted to
everyone (``group: all``) or to another AWS account: its disk contents can then be copied
out."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import is_account_id, listed, named, request


def _grantees(event: CloudTrailEvent) -> list[str]:
    """``all`` and the outside account ids the call adds."""
    permission = request(event, "launchPermission") or request(event, "createVolumePermission")
    if not isinstance(permission, CloudTrailEvent):
        return []
    found = []
    for item in listed(permission.deep_get("add")):
        if not isinstance(item, CloudTrailEvent):
            continue
        if str(item.get("group", "")) == "all":
            found.append("all")
        user = str(item.get("userId", ""))
        if is_account_id(user) and user != account(event):
            found.append(user)
    return found


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and bool(_grantees(event))


def _resource(event: CloudTrailEvent) -> str:
    return named(event, "imageId", "snapshotId")


def title(event: CloudTrailEvent) -> str:
    whom = "everyone" if "all" in _grantees(event) else ", ".join(_grantees(event))
    return f"{_resource(event)} shared with {whom}"


def severity(event: CloudTrailEvent) -> str:
    return "high" if "all" in _grantees(event) else "medium"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "resource": _resource(event),
            "sharedWith": ",".join(_grantees(event))}
