"""An RDS log file downloaded; engine logs can carry credentials, queries and data."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def title(event: CloudTrailEvent) -> str:
    return (f"RDS log {named(event, 'logFileName')} downloaded from "
            f"{named(event, 'dBInstanceIdentifier')}")


def dedup(event: CloudTrailEvent) -> str:
    who = event.deep_get("userIdentity", "arn", default="")
    return f"{event.get('recipientAccountId')}|{who}|{named(event, 'dBInstanceIdentifier')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "db": named(event, "dBInstanceIdentifier"),
            "logFile": named(event, "logFileName")}
