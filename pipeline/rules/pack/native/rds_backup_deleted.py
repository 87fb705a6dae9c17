"""RDS backups destroyed: a manual or cluster snapshot deleted, or automated backups
deleted. Removing backups comes before destroying or ransoming the database."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named

_AUTOMATED = frozenset({"DeleteDBInstanceAutomatedBackup", "DeleteDBClusterAutomatedBackup"})


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def _target(event: CloudTrailEvent) -> str:
    return named(event, "dBSnapshotIdentifier", "dBClusterSnapshotIdentifier", "dbiResourceId",
                 "dbClusterResourceId", "dBInstanceAutomatedBackupsArn")


def title(event: CloudTrailEvent) -> str:
    kind = "automated backups" if event.get("eventName") in _AUTOMATED else "snapshot"
    return f"RDS {kind} {_target(event)} deleted"


def severity(event: CloudTrailEvent) -> str:
    # Automated backups are the last line of recovery; deleting them is rarely routine.
    return "high" if event.get("eventName") in _AUTOMATED else "medium"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "target": _target(event)}
