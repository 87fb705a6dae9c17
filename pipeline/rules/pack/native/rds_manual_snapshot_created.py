"""A manual RDS snapshot taken (not an automated or AWS Backup one): the first step of
copying a database out through a snapshot."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named, response

_ROUTINE = frozenset({"automated", "awsbackup"})


def detect(event: CloudTrailEvent) -> bool:
    kind = str(response(event, "snapshotType", default="manual")).lower()
    return succeeded(event) and from_service(event, "rds") and kind not in _ROUTINE


def title(event: CloudTrailEvent) -> str:
    db = named(event, "dBInstanceIdentifier", "dBClusterIdentifier")
    snapshot = named(event, "dBSnapshotIdentifier", "dBClusterSnapshotIdentifier")
    return f"Manual RDS snapshot {snapshot} of {db}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event),
            "snapshot": named(event, "dBSnapshotIdentifier", "dBClusterSnapshotIdentifier")}
