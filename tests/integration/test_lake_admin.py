"""`trailpipe lake init|status` against the S3 API (moto server over HTTP), read back with boto3."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

pytestmark = pytest.mark.integration


# moto serves plain HTTP and ignores policy conditions: lake init refuses the TLS-only policy
# there, and any Deny statement would deny every put (the documents: tests/unit/test_lockout.py).
NO_POLICY = {"TRAILPIPE_LAKE__DENY_INSECURE_TRANSPORT": "false",
             "TRAILPIPE_LAKE__DENY_UNENCRYPTED_PUTS": "false"}


def lake(*args: str, s3: str, extra_env: dict[str, str] | None = None):
    env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json", **NO_POLICY, **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "pipeline.cli.app", "lake", *args,
                           "--s3-endpoint", s3], capture_output=True, text=True, env=env,
                          timeout=120)


def client(s3: str):
    return boto3.client("s3", endpoint_url=s3, region_name="us-east-1",
                        aws_access_key_id="t", aws_secret_access_key="t")


def test_init_applies_config_and_status_reads_it_back(s3_endpoint, unique) -> None:
    url = f"s3://lake-{unique}/trail"
    lock = {"TRAILPIPE_LAKE__OBJECT_LOCK": "true",
            "TRAILPIPE_LAKE__OBJECT_LOCK_RETENTION_DAYS": "7"}
    first = lake("init", "--lake", url, s3=s3_endpoint, extra_env=lock)
    assert first.returncode == 0, first.stderr
    assert "bucket created" in first.stdout and "lifecycle applied" in first.stdout
    again = lake("init", "--lake", url, s3=s3_endpoint, extra_env=lock)
    assert "nothing to do" in again.stdout  # idempotent

    s3 = client(s3_endpoint)
    bucket = f"lake-{unique}"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    events = rules["trailpipe-events"]
    assert events["Filter"]["Prefix"] == "trail/events/"
    assert [(t["Days"], t["StorageClass"]) for t in events["Transitions"]] == [
        (30, "STANDARD_IA"), (90, "GLACIER_IR"), (365, "DEEP_ARCHIVE")]
    assert set(rules) == {"trailpipe-events", "trailpipe-alerts", "trailpipe-aggregates",
                          "trailpipe-digests"}
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=bucket)  # both statements switched off
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(pab.values())
    lock_conf = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock_conf["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    ok = lake("status", "--lake", url, s3=s3_endpoint, extra_env=lock)
    assert ok.returncode == 0 and "DRIFT" not in ok.stdout


def test_status_reports_drift_and_init_repairs_it(s3_endpoint, unique) -> None:
    url, bucket = f"s3://drift-{unique}", f"drift-{unique}"
    assert lake("init", "--lake", url, s3=s3_endpoint).returncode == 0
    s3 = client(s3_endpoint)
    s3.delete_bucket_lifecycle(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({  # not wanted: init removes it
        "Version": "2012-10-17", "Statement": [{
            "Sid": "Other", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    drift = lake("status", "--lake", url, "--json", s3=s3_endpoint)
    assert drift.returncode == 1
    bad = {c["aspect"] for c in json.loads(drift.stdout) if not c["ok"]}
    assert bad == {"lifecycle", "bucket_policy"}
    fixed = lake("init", "--lake", url, s3=s3_endpoint)
    assert "lifecycle applied" in fixed.stdout and "bucket_policy applied" in fixed.stdout
    assert lake("status", "--lake", url, s3=s3_endpoint).returncode == 0


def test_file_lake_is_refused_with_exit_2(s3_endpoint) -> None:
    result = lake("status", "--lake", "file:///tmp/lake", s3=s3_endpoint)
    assert result.returncode == 2 and "not an S3 lake" in result.stderr


def test_storage_encryption_is_the_bucket_default_and_the_old_keys_are_refused(
        s3_endpoint, unique) -> None:
    url = f"s3://lake-{unique}/trail"
    kms = {"TRAILPIPE_STORAGE__ENCRYPTION": "aws:kms",
           "TRAILPIPE_STORAGE__KMS_KEY_ID": "alias/trailpipe-lake"}
    assert lake("init", "--lake", url, s3=s3_endpoint, extra_env=kms).returncode == 0
    enc = client(s3_endpoint).get_bucket_encryption(Bucket=f"lake-{unique}")[
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert enc == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/trailpipe-lake"}
    assert lake("status", "--lake", url, s3=s3_endpoint, extra_env=kms).returncode == 0
    drift = lake("status", "--json", "--lake", url, s3=s3_endpoint)  # default: AES256
    assert drift.returncode == 1
    assert {c["aspect"] for c in json.loads(drift.stdout) if not c["ok"]} == {"encryption"}
    old = lake("status", "--lake", url, s3=s3_endpoint,
               extra_env={"TRAILPIPE_LAKE__ENCRYPTION": "aws:kms"})
    assert old.returncode == 2 and "lake.encryption: unknown key" in old.stderr
