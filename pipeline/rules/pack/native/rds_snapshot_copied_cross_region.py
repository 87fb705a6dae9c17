"""An RDS snapshot copied in from another region: disaster recovery, or staging a copy
somewhere less watched before sharing it."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named, request


def _source_region(event: CloudTrailEvent) -> str:
    region = request(event, "sourceRegion")
    if isinstance(region, str) and region:
        return region
    # Without sourceRegion the source ARN tells: arn:aws:rds:<region>:...
    source = named(event, "sourceDBSnapshotIdentifier", "sourceDBClusterSnapshotIdentifier")
    parts = source.split(":")
    return parts[3] if source.startswith("arn:") and len(parts) > 3 else ""


def detect(event: CloudTrailEvent) -> bool:
    source = _source_region(event)
    return succeeded(event) and bool(source) and source != event.get("awsRegion")


def title(event: CloudTrailEvent) -> str:
    return (f"RDS snapshot copied from {_source_region(event)} to "
            f"{event.get('awsRegion')}")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "sourceRegion": _source_region(event),
            "target": named(event, "targetDBSnapshotIdentifier",
                            "targetDBClusterSnapshotIdentifier")}
