"""Many objects copied with a customer-provided encryption key (SSE-C). AWS keeps no copy
of such a key, so rewriting objects this way locks the owner out (ransomware seen in the
wild); the rule counts the copies per caller and bucket."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, principal, succeeded
from pipeline.rules.pack.native._resources import named, request


def detect(event: CloudTrailEvent) -> bool:
    algorithm = request(event, "x-amz-server-side-encryption-customer-algorithm")
    return succeeded(event) and algorithm is not None


def title(event: CloudTrailEvent) -> str:
    return f"Objects in {named(event, 'bucketName')} copied with a customer-provided key"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{principal(event)}|{named(event, 'bucketName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName")}
