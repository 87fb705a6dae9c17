"""`trailpipe produce cloudtrail-s3` end to end: moto S3 over HTTP → the real broker."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from kit import read_all

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"


def run(kafka, s3_endpoint: str, events: str, *args: str) -> tuple[int, dict]:
    env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json",
           "TRAILPIPE_TOPICS__EVENTS": events}
    result = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "produce", "cloudtrail-s3",
                             *args, "--bootstrap", kafka.bootstrap, "--s3-endpoint", s3_endpoint],
                            capture_output=True, text=True, env=env, timeout=120)
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def test_org_trail_layout_once_then_checkpointed(kafka, s3_endpoint, make_topic, unique,
                                                 tmp_path) -> None:
    events = make_topic("events", 3)
    bucket = f"trail-{unique}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="t", aws_secret_access_key="t")
    s3.create_bucket(Bucket=bucket)
    records = [json.loads(line) for line in
               (CORPUS / "stratus-red-team" / "records.jsonl").read_text().splitlines() if line]
    key = ("logs/AWSLogs/o-abc123def4/111122223333/CloudTrail/eu-west-1/2024/05/01/"
           "111122223333_CloudTrail_eu-west-1_20240501T0000Z_x.json.gz")
    s3.put_object(Bucket=bucket, Key=key,
                  Body=gzip.compress(json.dumps({"Records": records}).encode()))
    checkpoint = str(tmp_path / "cp.db")

    rc, first = run(kafka, s3_endpoint, events, f"s3://{bucket}/logs", "--checkpoint", checkpoint)
    assert rc == 0, first
    assert first["produced"] == len(records) and first["files"] == 1
    assert len(read_all(kafka.bootstrap, events, expected=len(records))) == len(records)

    rc, second = run(kafka, s3_endpoint, events, f"s3://{bucket}/logs", "--checkpoint", checkpoint)
    assert rc == 0 and second["produced"] == 0 and second["already_done"] == 1


def test_bad_url_exits_2(kafka, s3_endpoint, tmp_path) -> None:
    rc = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "produce", "cloudtrail-s3",
                         "http://not-s3", "--bootstrap", kafka.bootstrap,
                         "--checkpoint", str(tmp_path / "cp.db")],
                        capture_output=True, text=True, timeout=60).returncode
    assert rc == 2
