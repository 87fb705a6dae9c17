"""The account password policy was read by a person (not by an AWS service)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import principal


def detect(event: CloudTrailEvent) -> bool:
    return event.get("eventType") != "AwsServiceEvent" and bool(principal(event))
