"""A bucket or another resource opened to the internet: a resource policy allowing any
principal with no narrowing condition (S3, ECR, KMS, SQS, SNS, Secrets Manager,
OpenSearch), an S3 ACL granting all (authenticated) users, or an S3 public access block
removed or relaxed."""

from __future__ import annotations

from typing import Any

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import (
    from_service,
    listed,
    policy_is_public,
    request,
)

# eventName -> (service, requestParameters paths that may hold the policy document)
_POLICY_CALLS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "PutBucketPolicy": ("s3", (("bucketPolicy",),)),
    "SetRepositoryPolicy": ("ecr", (("policyText",),)),
    "PutKeyPolicy": ("kms", (("policy",),)),
    "CreateKey": ("kms", (("policy",),)),
    "SetQueueAttributes": ("sqs", (("attributes", "Policy"),)),
    "CreateQueue": ("sqs", (("attributes", "Policy"),)),
    "CreateTopic": ("sns", (("attributes", "Policy"),)),
    "PutResourcePolicy": ("secretsmanager", (("resourcePolicy",),)),
    "CreateElasticsearchDomain": ("es", (("accessPolicies",),)),
    "UpdateElasticsearchDomainConfig": ("es", (("accessPolicies",),)),
    "CreateDomain": ("es", (("accessPolicies",),)),
    "UpdateDomainConfig": ("es", (("accessPolicies",),)),
}
_CANNED_PUBLIC = frozenset({"public-read", "public-read-write", "authenticated-read"})
_PUBLIC_GROUPS = ("acs.amazonaws.com/groups/global/AllUsers",
                  "acs.amazonaws.com/groups/global/AuthenticatedUsers")
_BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                "RestrictPublicBuckets")
_RESOURCE_FIELDS = ("bucketName", "repositoryName", "keyId", "queueUrl", "queueName",
                    "topicArn", "name", "secretId", "domainName")


def _acl_is_public(event: CloudTrailEvent) -> bool:
    if any(str(v) in _CANNED_PUBLIC for v in listed(request(event, "x-amz-acl"))):
        return True
    for header in ("x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write",
                   "x-amz-grant-write-acp", "x-amz-grant-full-control"):
        if any(g in str(v) for v in listed(request(event, header)) for g in _PUBLIC_GROUPS):
            return True
    grants = request(event, "AccessControlPolicy", "AccessControlList", "Grant")
    return any(str(g.deep_get("Grantee", "URI", default="")).endswith(_PUBLIC_GROUPS)
               for g in listed(grants) if isinstance(g, CloudTrailEvent))


def _block_relaxed(event: CloudTrailEvent) -> bool:
    config = request(event, "PublicAccessBlockConfiguration")
    if not isinstance(config, CloudTrailEvent):
        return False
    return any(str(config.get(flag, "")).lower() == "false" for flag in _BLOCK_FLAGS)


def _sns_policy(event: CloudTrailEvent) -> Any:
    if str(request(event, "attributeName", default="")) == "Policy":
        return request(event, "attributeValue")
    return None


def detect(event: CloudTrailEvent) -> bool:
    if not succeeded(event):
        return False
    name = str(event.get("eventName") or "")
    if name in _POLICY_CALLS:
        service, paths = _POLICY_CALLS[name]
        return from_service(event, service) and any(
            policy_is_public(request(event, *path)) for path in paths)
    if name == "SetTopicAttributes":
        return from_service(event, "sns") and policy_is_public(_sns_policy(event))
    if not from_service(event, "s3"):
        return False
    if name == "PutBucketAcl":
        return _acl_is_public(event)
    if name in ("DeleteBucketPublicAccessBlock", "DeleteAccountPublicAccessBlock"):
        return True
    return _block_relaxed(event)


def _resource(event: CloudTrailEvent) -> str:
    for field in _RESOURCE_FIELDS:
        value = request(event, field)
        if isinstance(value, str) and value:
            return value
    return "account" if "Account" in str(event.get("eventName")) else "?"


def title(event: CloudTrailEvent) -> str:
    service = str(event.get("eventSource") or "").split(".", 1)[0].upper()
    return f"{service} resource {_resource(event)} made public ({event.get('eventName')})"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{event.get('eventSource')}|{_resource(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "resource": _resource(event)}
