"""An instance's user data replaced: the new script runs as root (or SYSTEM) at the next
boot, a persistence and code-execution path."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import named, request


def detect(event: CloudTrailEvent) -> bool:
    changed = request(event, "userData") is not None or str(
        request(event, "attribute", default="")) == "userData"
    return succeeded(event) and changed


def title(event: CloudTrailEvent) -> str:
    return f"User data (startup script) of {named(event, 'instanceId')} changed"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "instanceId": named(event, "instanceId")}
