"""SSH public keys pushed to instances with EC2 Instance Connect; one caller pushing to
instance after instance is spreading access."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "instanceId": named(event, "instanceId"),
            "osUser": named(event, "instanceOSUser")}
