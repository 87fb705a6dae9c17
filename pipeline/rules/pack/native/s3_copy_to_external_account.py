"""An object copy that involves a bucket owned by another account (CloudTrail lists each
bucket of the copy with its owner in ``resources``): data leaving for, or arriving from,
an account that is not the caller's."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import named


def _foreign_buckets(event: CloudTrailEvent) -> list[str]:
    own = str(event.deep_get("userIdentity", "accountId", default="")) or account(event)
    resources = event.get("resources")
    return [str(r.get("ARN") or r.get("arn")) for r in resources or []
            if isinstance(r, CloudTrailEvent) and r.get("type") == "AWS::S3::Bucket"
            and r.get("accountId") and str(r.get("accountId")) != own]


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and bool(_foreign_buckets(event))


def title(event: CloudTrailEvent) -> str:
    return f"S3 object copied across accounts ({', '.join(_foreign_buckets(event))})"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName"),
            "copySource": named(event, "x-amz-copy-source"),
            "foreignBuckets": ",".join(_foreign_buckets(event))}
