"""Credentials of an EC2 instance role (a session named after the instance id, as the
metadata service issues them) used from a public IP address. Instances normally call AWS
from their private address through a VPC endpoint or NAT; a public source suggests the
credentials were taken off the instance (SSRF, IMDS theft) and used elsewhere."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, is_aws_service
from pipeline.rules.pack.native._resources import instance_session, is_public_ip

# The SSM agent on the instance talks to these services with the instance's own
# credentials; its traffic is expected from anywhere the instance is.
_AGENT_SERVICES = frozenset({"ssm.amazonaws.com", "ssmmessages.amazonaws.com",
                             "ec2messages.amazonaws.com"})


def detect(event: CloudTrailEvent) -> bool:
    return (instance_session(event) and is_public_ip(event.get("sourceIPAddress"))
            and not is_aws_service(event)
            and str(event.get("eventSource") or "") not in _AGENT_SERVICES)


def title(event: CloudTrailEvent) -> str:
    session = str(event.deep_get("userIdentity", "arn", default="")).rsplit("/", 1)[-1]
    return (f"Credentials of instance {session} used from {event.get('sourceIPAddress')} "
            f"({event.get('eventName')})")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return aws_context(event)
