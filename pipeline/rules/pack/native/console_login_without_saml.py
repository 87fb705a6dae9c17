"""A successful console sign-in that did not come through the SAML identity provider."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, identity_type


def detect(event: CloudTrailEvent) -> bool:
    if event.deep_get("responseElements", "ConsoleLogin") != "Success":
        return False
    if event.deep_get("additionalEventData", "SamlProviderArn"):
        return False
    # Identity Center sessions are federated too, through its own reserved roles.
    return not (identity_type(event) == "AssumedRole"
                and ":assumed-role/AWSReservedSSO_" in str(event.deep_get("userIdentity", "arn")))


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
