"""A bucket's ACL or bucket policy set or removed (whatever the new content); the public
variant is reported by ``s3_resource_made_public``."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "s3")


def title(event: CloudTrailEvent) -> str:
    return f"S3 bucket {named(event, 'bucketName')}: {event.get('eventName')}"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{named(event, 'bucketName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName")}
