"""SecureString parameters read with decryption; counted per caller, so only a burst
(someone sweeping the parameter store for secrets) alerts."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service
from pipeline.rules.pack.native._resources import listed, request


def detect(event: CloudTrailEvent) -> bool:
    return request(event, "withDecryption") is True and not is_aws_service(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    names = listed(request(event, "names")) or listed(request(event, "name"))
    return {**aws_context(event), "parameters": ",".join(str(n) for n in names[:10])}
