"""What the lake bucket should look like: encryption, TLS-only policy, public access block,
versioning, Object Lock, and lifecycle tiers per prefix. Pure: builds the S3 API documents
from config and compares them with what a bucket has (see :mod:`pipeline.lake.admin`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from pipeline.config import StorageConfig

StorageClass = Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR",
                       "GLACIER", "DEEP_ARCHIVE"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    days: int = Field(ge=0)
    storage_class: StorageClass


class PrefixLifecycle(_Strict):
    transitions: list[Tier] = Field(default_factory=list)
    expiration_days: int | None = Field(default=None, ge=1, description="None: keep forever")


def _default_tiers() -> dict[str, PrefixLifecycle]:
    standard = [Tier(days=30, storage_class="STANDARD_IA"),
                Tier(days=90, storage_class="GLACIER_IR"),
                Tier(days=365, storage_class="DEEP_ARCHIVE")]
    return {"events": PrefixLifecycle(transitions=standard),
            "alerts": PrefixLifecycle(transitions=standard[:2]),
            "aggregates": PrefixLifecycle(transitions=standard[:1], expiration_days=400),
            "digests": PrefixLifecycle(transitions=standard[:2])}


class LakePolicyConfig(_Strict):
    """The ``[lake]`` section: how ``trailpipe lake init`` sets up the bucket (its default
    encryption is ``[storage]`` ``encryption``, the same setting every put uses)."""

    deny_insecure_transport: bool = Field(default=True, description=(
        "deny every request without TLS (aws:SecureTransport); false on a plain-HTTP endpoint "
        "(dev), where it would deny every request"))
    deny_unencrypted_puts: bool = True
    block_public_access: bool = True
    versioning: bool = False
    object_lock: bool = False
    object_lock_retention_days: int | None = Field(default=None, ge=1)
    lifecycle: dict[str, PrefixLifecycle] = Field(default_factory=_default_tiers)


def encryption_document(storage: StorageConfig) -> dict[str, Any]:
    """The bucket's default encryption: ``[storage]`` ``encryption`` (and ``kms_key_id``)."""
    rule: dict[str, Any] = {"SSEAlgorithm": storage.encryption}
    if storage.encryption == "aws:kms" and storage.kms_key_id:
        rule["KMSMasterKeyID"] = storage.kms_key_id
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]}


def transport_problems(cfg: LakePolicyConfig, s3_endpoint: str | None) -> list[str]:
    """Why applying the bucket policy would lock every client out, or nothing: a TLS-only
    statement on a bucket reached over plain HTTP denies every request, since
    ``aws:SecureTransport`` is false on all of them (every daemon then gets 403 forever)."""
    if not cfg.deny_insecure_transport or not s3_endpoint:
        return []
    if urlparse(s3_endpoint).scheme != "http":
        return []
    return [f"the S3 endpoint {s3_endpoint} is plain HTTP: the TLS-only bucket policy "
            "([lake] deny_insecure_transport = true) would deny every request over it, so "
            "every daemon would get 403 on every read and write",
            "use an https:// endpoint ([storage] s3_endpoint), or set `[lake] "
            "deny_insecure_transport = false` in the config to apply the policy without the "
            "TLS condition"]


def bucket_policy(cfg: LakePolicyConfig, bucket: str) -> dict[str, Any] | None:
    """Deny non-TLS access and puts without server-side encryption; None when neither is
    wanted."""
    arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict[str, Any]] = []
    if cfg.deny_insecure_transport:
        statements.append({
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    if cfg.deny_unencrypted_puts:
        statements.append({
            "Sid": "DenyUnencryptedPuts", "Effect": "Deny", "Principal": "*",
            "Action": "s3:PutObject", "Resource": f"{arn}/*",
            "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}})
    return {"Version": "2012-10-17", "Statement": statements} if statements else None


def lifecycle_rules(cfg: LakePolicyConfig, prefix: str) -> list[dict[str, Any]]:
    """One rule per lake prefix (``events``, ``alerts``, ...) under the lake's own prefix."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    rules = []
    for name, tiers in sorted(cfg.lifecycle.items()):
        rule: dict[str, Any] = {
            "ID": f"trailpipe-{name}", "Status": "Enabled",
            "Filter": {"Prefix": f"{base}{name}/"},
            "Transitions": [{"Days": t.days, "StorageClass": t.storage_class}
                            for t in tiers.transitions]}
        if tiers.expiration_days is not None:
            rule["Expiration"] = {"Days": tiers.expiration_days}
        rules.append(rule)
    return rules


def public_access_block() -> dict[str, bool]:
    return {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}


def canonical(doc: Any) -> str:
    """Stable text for comparing documents read back from S3 with the wanted ones."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
