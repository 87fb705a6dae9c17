"""The master user password of an RDS instance or cluster changed: whoever set it now
owns the database."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named, request


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and request(event, "masterUserPassword") is not None


def title(event: CloudTrailEvent) -> str:
    db = named(event, "dBInstanceIdentifier", "dBClusterIdentifier")
    return f"Master password changed on RDS {db}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "db": named(event, "dBInstanceIdentifier",
                                              "dBClusterIdentifier")}
