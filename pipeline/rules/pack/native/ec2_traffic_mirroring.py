"""Traffic mirroring set up or changed: a copy of an instance's network traffic sent to
another interface, i.e. packet capture. Attempts count, successful or not."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, error_code, is_aws_service


def detect(event: CloudTrailEvent) -> bool:
    return not is_aws_service(event) and "DryRun" not in error_code(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
