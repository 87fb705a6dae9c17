"""Shell sessions started or commands sent to instances through Systems Manager; counted
per caller, so one actor reaching many instances quickly alerts."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service, succeeded
from pipeline.rules.pack.native._resources import listed, named, request


def _targets(event: CloudTrailEvent) -> list[str]:
    ids = [str(i) for i in listed(request(event, "instanceIds"))]
    target = named(event, "target")
    return ids or ([] if target == "?" else [target])


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and not is_aws_service(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "targets": ",".join(_targets(event)[:20]),
            "document": named(event, "documentName")}
