"""Objects deleted from a bucket; counted per caller and bucket, so only a mass deletion
alerts."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, principal, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "s3")


def title(event: CloudTrailEvent) -> str:
    return f"Many objects deleted from S3 bucket {named(event, 'bucketName')}"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{principal(event)}|{named(event, 'bucketName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName")}
