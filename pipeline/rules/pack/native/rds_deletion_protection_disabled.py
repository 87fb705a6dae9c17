"""Deletion protection turned off on an RDS instance or cluster, usually the step just
before deleting it."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named, request


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and request(event, "deletionProtection") is False


def _db(event: CloudTrailEvent) -> str:
    return named(event, "dBInstanceIdentifier", "dBClusterIdentifier")


def title(event: CloudTrailEvent) -> str:
    return f"Deletion protection disabled on RDS {_db(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "db": _db(event)}
