"""A bucket's recovery or audit controls switched off: server access logging disabled,
versioning suspended, or MFA delete disabled."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named, request


def _disabled(event: CloudTrailEvent) -> list[str]:
    """The controls the call turns off."""
    found = []
    status = request(event, "BucketLoggingStatus")
    if isinstance(status, CloudTrailEvent) and "LoggingEnabled" not in status:
        found.append("access logging")
    versioning = request(event, "VersioningConfiguration")
    if isinstance(versioning, CloudTrailEvent):
        if str(versioning.get("Status", "")) in ("Suspended", "Disabled"):
            found.append("versioning")
        if str(versioning.get("MfaDelete", "")) == "Disabled":
            found.append("MFA delete")
    return found


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "s3") and bool(_disabled(event))


def title(event: CloudTrailEvent) -> str:
    return f"S3 bucket {named(event, 'bucketName')}: {', '.join(_disabled(event))} disabled"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{named(event, 'bucketName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName"),
            "disabled": ",".join(_disabled(event))}
