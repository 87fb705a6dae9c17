"""``trailpipe lake init`` and ``lake status``: apply the bucket policy from config (``[lake]``,
and ``[storage]`` for the default encryption), and show what the bucket has against what config
wants. Idempotent: init only writes what differs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.lake.policy import (
    LakePolicyConfig,
    bucket_policy,
    canonical,
    encryption_document,
    lifecycle_rules,
    public_access_block,
)

if TYPE_CHECKING:
    from pipeline.config import StorageConfig

OURS = "trailpipe-"


@dataclass(frozen=True, slots=True)
class Check:
    aspect: str
    wanted: str
    actual: str

    @property
    def ok(self) -> bool:
        return self.wanted == self.actual


def _read(call: Callable[[], Any], *absent: str) -> Any:
    """The API answer, or None when the bucket has no such configuration."""
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in absent:
            return None
        raise


def _rule_view(rule: dict[str, Any]) -> dict[str, Any]:
    keys = ("ID", "Status", "Filter", "Transitions", "Expiration")
    view: dict[str, Any] = {k: rule[k] for k in keys if k in rule}
    view["Transitions"] = [{"Days": t["Days"], "StorageClass": t["StorageClass"]}
                           for t in rule.get("Transitions", [])]
    return view


def _lock_view(conf: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {"ObjectLockEnabled": conf.get("ObjectLockEnabled")}
    retention = conf.get("Rule", {}).get("DefaultRetention")
    if retention:  # some endpoints add "Years": 0 beside "Days"
        view["Rule"] = {"DefaultRetention": {k: v for k, v in retention.items() if v}}
    return view


def _actual(client: Any, bucket: str) -> dict[str, str]:
    enc = _read(lambda: client.get_bucket_encryption(Bucket=bucket),
                "ServerSideEncryptionConfigurationNotFoundError")
    pab = _read(lambda: client.get_public_access_block(Bucket=bucket),
                "NoSuchPublicAccessBlockConfiguration")
    pol = _read(lambda: client.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
    # A bucket never versioned says nothing; one switched off says Suspended: both are off.
    ver = client.get_bucket_versioning(Bucket=bucket).get("Status", "Disabled")
    ver = "Disabled" if ver == "Suspended" else ver
    lock = _read(lambda: client.get_object_lock_configuration(Bucket=bucket),
                 "ObjectLockConfigurationNotFoundError")
    life = _read(lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket),
                 "NoSuchLifecycleConfiguration")
    rules = [_rule_view(r) for r in (life or {}).get("Rules", []) if r["ID"].startswith(OURS)]
    return {
        "encryption": canonical([r["ApplyServerSideEncryptionByDefault"] for r in
                                 enc["ServerSideEncryptionConfiguration"]["Rules"]])
        if enc else "none",
        "public_access_block": canonical(pab["PublicAccessBlockConfiguration"]) if pab
        else "none",
        "bucket_policy": canonical(json.loads(pol["Policy"])) if pol else "none",
        "versioning": ver,
        "object_lock": canonical(_lock_view(lock["ObjectLockConfiguration"])) if lock
        else "none",
        "lifecycle": canonical(sorted(rules, key=lambda r: r["ID"])),
    }


def _wanted(cfg: LakePolicyConfig, storage: StorageConfig, bucket: str,
            prefix: str) -> dict[str, str]:
    policy = bucket_policy(cfg, bucket)
    lock: Any = "none"
    if cfg.object_lock:
        lock = {"ObjectLockEnabled": "Enabled"}
        if cfg.object_lock_retention_days:
            lock["Rule"] = {"DefaultRetention": {"Mode": "COMPLIANCE",
                                                 "Days": cfg.object_lock_retention_days}}
        lock = canonical(lock)
    return {
        "encryption": canonical([r["ApplyServerSideEncryptionByDefault"]
                                 for r in encryption_document(storage)["Rules"]]),
        "public_access_block": canonical(public_access_block()) if cfg.block_public_access
        else "none",
        "bucket_policy": canonical(policy) if policy else "none",
        "versioning": "Enabled" if cfg.versioning or cfg.object_lock else "Disabled",
        "object_lock": lock,
        "lifecycle": canonical(sorted((_rule_view(r) for r in lifecycle_rules(cfg, prefix)),
                                      key=lambda r: r["ID"])),
    }


def bucket_status(client: Any, bucket: str, prefix: str, cfg: LakePolicyConfig,
                  storage: StorageConfig) -> list[Check]:
    """Every aspect, wanted against actual (canonical JSON text on both sides)."""
    wanted, actual = _wanted(cfg, storage, bucket, prefix), _actual(client, bucket)
    return [Check(aspect, wanted[aspect], actual[aspect]) for aspect in wanted]


def init_bucket(client: Any, bucket: str, prefix: str, cfg: LakePolicyConfig,
                storage: StorageConfig) -> list[str]:
    """Create the bucket if missing and apply every aspect that differs; returns what it did."""
    done: list[str] = []
    if _read(lambda: client.head_bucket(Bucket=bucket), "404", "NoSuchBucket") is None:
        args: dict[str, Any] = {"Bucket": bucket}
        if cfg.object_lock:
            args["ObjectLockEnabledForBucket"] = True
        client.create_bucket(**args)
        done.append("bucket created")
    for check in bucket_status(client, bucket, prefix, cfg, storage):
        if check.ok:
            continue
        if check.aspect == "encryption":
            client.put_bucket_encryption(
                Bucket=bucket, ServerSideEncryptionConfiguration=encryption_document(storage))
        else:
            _APPLY[check.aspect](client, bucket, prefix, cfg)
        done.append(f"{check.aspect} applied")
    return done


def current_policy(client: Any, bucket: str) -> str | None:
    """The bucket's policy document as stored, or None (no policy, or no bucket yet)."""
    pol = _read(lambda: client.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy",
                "NoSuchBucket")
    return str(pol["Policy"]) if pol else None


def restore_policy(client: Any, bucket: str, policy: str | None) -> None:
    """Put back a policy read with :func:`current_policy` (None: remove the bucket's policy)."""
    if policy is None:
        client.delete_bucket_policy(Bucket=bucket)
    else:
        client.put_bucket_policy(Bucket=bucket, Policy=policy)


def _apply_lifecycle(client: Any, bucket: str, prefix: str, cfg: LakePolicyConfig) -> None:
    # Keep rules that are not ours: the bucket may hold other data with its own tiers.
    life = _read(lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket),
                 "NoSuchLifecycleConfiguration")
    others = [r for r in (life or {}).get("Rules", []) if not r["ID"].startswith(OURS)]
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": others + lifecycle_rules(cfg, prefix)})


def _apply_policy(client: Any, bucket: str, _prefix: str, cfg: LakePolicyConfig) -> None:
    policy = bucket_policy(cfg, bucket)
    if policy is None:
        client.delete_bucket_policy(Bucket=bucket)
    else:
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _apply_lock(client: Any, bucket: str, _prefix: str, cfg: LakePolicyConfig) -> None:
    if not cfg.object_lock:
        return  # Object Lock cannot be turned off once a bucket has it; status keeps saying so
    conf: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
    if cfg.object_lock_retention_days:
        conf["Rule"] = {"DefaultRetention": {"Mode": "COMPLIANCE",
                                             "Days": cfg.object_lock_retention_days}}
    client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)


def _apply_pab(client: Any, bucket: str, _prefix: str, cfg: LakePolicyConfig) -> None:
    if cfg.block_public_access:
        client.put_public_access_block(Bucket=bucket,
                                       PublicAccessBlockConfiguration=public_access_block())
    else:
        client.delete_public_access_block(Bucket=bucket)


_APPLY: dict[str, Callable[[Any, str, str, LakePolicyConfig], None]] = {
    "public_access_block": _apply_pab,
    "bucket_policy": _apply_policy,
    "versioning": lambda c, b, _p, cfg: c.put_bucket_versioning(
        Bucket=b, VersioningConfiguration={
            "Status": "Enabled" if cfg.versioning or cfg.object_lock else "Suspended"}),
    "object_lock": _apply_lock,
    "lifecycle": _apply_lifecycle,
}
