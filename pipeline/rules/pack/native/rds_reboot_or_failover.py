"""An RDS instance, cluster or shard group rebooted, or a cluster failed over by hand:
a short outage, whether planned, a test, or a disruption."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def _target(event: CloudTrailEvent) -> str:
    return named(event, "dBInstanceIdentifier", "dBClusterIdentifier",
                 "globalClusterIdentifier", "dBShardGroupIdentifier")


def title(event: CloudTrailEvent) -> str:
    return f"RDS {_target(event)}: {event.get('eventName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "target": _target(event)}
