"""An RDS snapshot shared with other accounts (or with everyone): whoever it is shared
with can restore a full copy of the database."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import listed, named, request


def _added(event: CloudTrailEvent) -> list[str]:
    if str(request(event, "attributeName", default="")) != "restore":
        return []
    return [str(v) for v in listed(request(event, "valuesToAdd"))]


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and bool(_added(event))


def _snapshot(event: CloudTrailEvent) -> str:
    return named(event, "dBSnapshotIdentifier", "dBClusterSnapshotIdentifier")


def title(event: CloudTrailEvent) -> str:
    whom = "everyone" if "all" in _added(event) else ", ".join(_added(event))
    return f"RDS snapshot {_snapshot(event)} shared with {whom}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "snapshot": _snapshot(event),
            "sharedWith": ",".join(_added(event))}
