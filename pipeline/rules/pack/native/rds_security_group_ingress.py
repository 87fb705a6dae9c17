"""Network access granted to an RDS DB security group (classic, non-VPC), from a CIDR or
an EC2 security group; from 0.0.0.0/0 the database is open to the internet."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import WORLD_CIDRS, from_service, named


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and from_service(event, "rds")


def _source(event: CloudTrailEvent) -> str:
    return named(event, "cIDRIP", "eC2SecurityGroupId", "eC2SecurityGroupName")


def title(event: CloudTrailEvent) -> str:
    return f"RDS security group {named(event, 'dBSecurityGroupName')} opened to {_source(event)}"


def severity(event: CloudTrailEvent) -> str:
    return "high" if _source(event) in WORLD_CIDRS else "medium"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "group": named(event, "dBSecurityGroupName"),
            "source": _source(event)}
