"""EC2 user data read through the API. User data often holds bootstrap secrets; an actor
reading it for many instances is harvesting them. Calls AWS services make for a caller
(``invokedBy``) are left out."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service
from pipeline.rules.pack.native._resources import named, request


def detect(event: CloudTrailEvent) -> bool:
    # Denied reads count too: trying many instances is the signal.
    return str(request(event, "attribute", default="")) == "userData" and not is_aws_service(event)


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "instanceId": named(event, "instanceId")}
