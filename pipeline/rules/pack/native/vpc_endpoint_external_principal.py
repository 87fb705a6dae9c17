"""A call through a VPC endpoint by a principal of another account than the endpoint's
owner: someone from outside using this network's private path to AWS."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, is_aws_service


def _caller_account(event: CloudTrailEvent) -> str:
    return str(event.deep_get("userIdentity", "accountId", default=""))


def _endpoint_account(event: CloudTrailEvent) -> str:
    return str(event.get("vpcEndpointAccountId") or account(event))


def detect(event: CloudTrailEvent) -> bool:
    if not event.get("vpcEndpointId") or is_aws_service(event):
        return False
    caller = _caller_account(event)
    return bool(caller) and caller != _endpoint_account(event)


def title(event: CloudTrailEvent) -> str:
    return (f"Account {_caller_account(event)} called {event.get('eventName')} through VPC "
            f"endpoint {event.get('vpcEndpointId')} of account {_endpoint_account(event)}")


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "vpcEndpointId": str(event.get("vpcEndpointId")),
            "callerAccount": _caller_account(event)}
