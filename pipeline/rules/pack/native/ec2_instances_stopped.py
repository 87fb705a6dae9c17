"""EC2 instances stopped (a stopped instance can have its user data, type or volumes
changed, which a running one cannot)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import listed, request


def _instances(event: CloudTrailEvent) -> list[str]:
    return [str(i.get("instanceId")) for i in listed(request(event, "instancesSet"))
            if isinstance(i, CloudTrailEvent)]


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    return f"EC2 instances stopped: {', '.join(_instances(event)) or '?'}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "instances": ",".join(_instances(event))}
