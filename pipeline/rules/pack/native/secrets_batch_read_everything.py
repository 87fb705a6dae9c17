"""A BatchGetSecretValue whose only filters are negated tag keys (``!some-tag``), which
matches nearly every secret: "give me all of them" in one call."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context
from pipeline.rules.pack.native._resources import listed, request


def _negated_only(filters: list[object]) -> bool:
    if not filters:
        return False
    for item in filters:
        if not isinstance(item, CloudTrailEvent) or str(item.get("key")) != "tag-key":
            return False
        values = listed(item.get("values"))
        if not values or not all(str(v).startswith("!") for v in values):
            return False
    return True


def detect(event: CloudTrailEvent) -> bool:
    return _negated_only(listed(request(event, "filters")))


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
