"""An IAM role attached to an RDS instance or cluster, letting the database engine call
AWS (S3 import/export, Lambda) with that role's permissions."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def title(event: CloudTrailEvent) -> str:
    db = named(event, "dBInstanceIdentifier", "dBClusterIdentifier")
    return f"IAM role {named(event, 'roleArn')} added to RDS {db}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "roleArn": named(event, "roleArn"),
            "feature": named(event, "featureName")}
