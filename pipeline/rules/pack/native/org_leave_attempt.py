"""An account tried to leave its AWS Organization (successful or not)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context


def detect(event: CloudTrailEvent) -> bool:
    # Even a refused attempt matters: someone with access tried to escape the org's controls.
    return True


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
