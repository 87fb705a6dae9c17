"""An AMI created, copied, imported or exported: images carry a full copy of an instance's
disks, so their creation is worth a trail."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named, response


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event)


def title(event: CloudTrailEvent) -> str:
    image = response(event, "imageId") or named(event, "instanceId", "sourceImageId", "imageId")
    return f"EC2 image {image}: {event.get('eventName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "imageId": str(response(event, "imageId", default="")),
            "instanceId": named(event, "instanceId")}
