"""An RDS instance or cluster deleted; without a final snapshot its data is gone."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named, request


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def _db(event: CloudTrailEvent) -> str:
    return named(event, "dBInstanceIdentifier", "dBClusterIdentifier")


def _no_final_snapshot(event: CloudTrailEvent) -> bool:
    return request(event, "skipFinalSnapshot") is True


def title(event: CloudTrailEvent) -> str:
    suffix = " without a final snapshot" if _no_final_snapshot(event) else ""
    return f"RDS {_db(event)} deleted{suffix}"


def severity(event: CloudTrailEvent) -> str:
    return "high" if _no_final_snapshot(event) else "medium"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "db": _db(event),
            "skipFinalSnapshot": str(_no_final_snapshot(event)).lower()}
