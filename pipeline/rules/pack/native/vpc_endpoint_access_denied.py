"""A request refused by a VPC endpoint policy: something inside the network tried to reach
a resource the endpoint policy keeps it away from."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, error_code


def detect(event: CloudTrailEvent) -> bool:
    return error_code(event) == "VpceAccessDenied"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "vpcEndpointId": str(event.get("vpcEndpointId") or "")}
