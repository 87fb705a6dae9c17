"""An RDS snapshot export to S3 started: the whole database lands as files in a bucket."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def title(event: CloudTrailEvent) -> str:
    return (f"RDS snapshot {named(event, 'sourceArn')} exported to S3 bucket "
            f"{named(event, 's3BucketName')}")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "source": named(event, "sourceArn"),
            "bucket": named(event, "s3BucketName")}
