"""A sensitive control-plane call (trail, key, secret, instance or bucket-policy changes)
made through a VPC endpoint, i.e. from inside a workload network rather than by an
operator."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context


def detect(event: CloudTrailEvent) -> bool:
    return bool(event.get("vpcEndpointId"))


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "vpcEndpointId": str(event.get("vpcEndpointId"))}
