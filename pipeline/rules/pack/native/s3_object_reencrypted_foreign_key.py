"""Objects copied (usually onto themselves) or written under a KMS key of another account:
the owner can no longer decrypt them. This is how S3 ransomware locks data without
downloading it (the SSE-C variant is ``s3_copy_sse_c_burst``)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import arn_account, named, request

_KMS_KEY = "x-amz-server-side-encryption-aws-kms-key-id"


def _foreign_key(event: CloudTrailEvent) -> str:
    """The KMS key ARN when it belongs to another account than the bucket's, else ``""``."""
    key = str(request(event, _KMS_KEY, default=""))
    owner = arn_account(key)
    return key if owner and owner != account(event) else ""


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and bool(_foreign_key(event))


def title(event: CloudTrailEvent) -> str:
    return (f"S3 objects in {named(event, 'bucketName')} re-encrypted with a KMS key of "
            f"account {arn_account(_foreign_key(event))}")


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{named(event, 'bucketName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName"),
            "key": named(event, "key"), "kmsKey": _foreign_key(event)}
