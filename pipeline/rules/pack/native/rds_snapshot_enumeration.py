"""RDS snapshots listed including public or shared ones: looking for other accounts'
snapshots that can be restored."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import request


def detect(event: CloudTrailEvent) -> bool:
    wide = request(event, "includePublic") is True or request(event, "includeShared") is True
    return succeeded(event) and wide


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event),
            "includePublic": str(request(event, "includePublic", default=False)).lower(),
            "includeShared": str(request(event, "includeShared", default=False)).lower()}
