"""A bucket's default encryption or replication configuration deleted: data written from
now on is unencrypted, or no longer copied to its backup."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "s3")


def title(event: CloudTrailEvent) -> str:
    what = "encryption" if event.get("eventName") == "DeleteBucketEncryption" else "replication"
    return f"S3 bucket {named(event, 'bucketName')}: default {what} removed"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{named(event, 'bucketName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName")}
