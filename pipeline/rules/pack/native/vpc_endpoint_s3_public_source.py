"""S3 data read or written through a VPC endpoint while the recorded source is a public IP
address; traffic through an endpoint normally comes from private addresses."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, is_public_ip, named


def detect(event: CloudTrailEvent) -> bool:
    return (succeeded(event) and from_service(event, "s3") and bool(event.get("vpcEndpointId"))
            and is_public_ip(event.get("sourceIPAddress")))


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName"),
            "vpcEndpointId": str(event.get("vpcEndpointId"))}
