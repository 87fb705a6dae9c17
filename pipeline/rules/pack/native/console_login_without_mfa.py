"""A successful console sign-in by an IAM user or root with no MFA. Federated sign-ins
(SAML, SSO, roles) are left out: their MFA happens at the identity provider."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import actor_name, aws_context, identity_type, mfa_used


def detect(event: CloudTrailEvent) -> bool:
    if event.deep_get("responseElements", "ConsoleLogin") != "Success":
        return False
    if identity_type(event) not in ("IAMUser", "Root"):
        return False
    if event.deep_get("additionalEventData", "SamlProviderArn"):
        return False
    return not mfa_used(event)


def title(event: CloudTrailEvent) -> str:
    return (f"Console sign-in without MFA by {actor_name(event)} "
            f"in account {event.get('recipientAccountId')}")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
