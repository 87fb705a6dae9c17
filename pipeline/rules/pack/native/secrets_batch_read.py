"""Secrets fetched in batches (BatchGetSecretValue, up to 20 per call): fewer calls for
the same harvest. Counted per caller."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service
from pipeline.rules.pack.native._resources import listed, request


def detect(event: CloudTrailEvent) -> bool:
    return not is_aws_service(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    ids = listed(request(event, "secretIdList"))
    return {**aws_context(event), "secrets": ",".join(str(i) for i in ids[:20])}
