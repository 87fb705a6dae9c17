"""Digest coverage of the lake objects a replay read, and the manifest entries made of it
(old manifests without the lake fields still verify)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.fs as pafs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.lake.digest.model import ObjectEntry, build_digest, canonical_json
from pipeline.lake.keys import fingerprint
from pipeline.lake.layout import HOUR_MS
from pipeline.replay.lake_digests import digest_coverage
from pipeline.replay.manifest import (
    Manifest,
    OutputFile,
    describe_output,
    lake_objects,
    verify,
    write_manifest,
)

DELIVERED_MS = 1_764_201_600_000 + 20 * 60_000  # 00:20 UTC
KEY_A, KEY_B = "events/account=1/region=r/date=d/hour=00/t+0+0.parquet", "events/x/t+0+9.parquet"


def put(root: Path, key: str, data: bytes, mtime_ms: int) -> str:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime_ms / 1000, mtime_ms / 1000))
    return hashlib.sha256(data).hexdigest()


def entry(key: str, sha256: str) -> ObjectEntry:
    return ObjectEntry(key, sha256, 1, 1, "t", 0, 0, 0)


def write_digest(root: Path, signer: Ed25519PrivateKey, start_ms: int, period_ms: int,
                 *entries: ObjectEntry) -> None:
    digest = build_digest(start_ms, lake="file:///lake", previous=None, objects=entries,
                          compactions=[], signer=signer, signed_at_ms=start_ms + period_ms,
                          period_ms=period_ms)
    put(root, digest.key, digest.body, start_ms + period_ms)


def test_an_object_is_covered_when_a_trusted_digest_lists_its_sha256(tmp_path: Path) -> None:
    signer = Ed25519PrivateKey.generate()
    sha_a = put(tmp_path, KEY_A, b"object a", DELIVERED_MS)
    sha_b = put(tmp_path, KEY_B, b"object b", DELIVERED_MS)
    # 5-minute digests: the one of 00:20 lists A as read; B is listed with other bytes.
    write_digest(tmp_path, signer, DELIVERED_MS, 5 * 60_000, entry(KEY_A, sha_a),
                 entry(KEY_B, "0" * 64))
    fs = pafs.LocalFileSystem()
    objects = [(KEY_A, sha_a), (KEY_B, sha_b)]
    trusted = {fingerprint(signer.public_key()): signer.public_key()}
    assert digest_coverage(fs, str(tmp_path), objects, trusted) == {KEY_A: True, KEY_B: False}
    assert digest_coverage(fs, str(tmp_path), objects) == {KEY_A: True, KEY_B: False}
    other = Ed25519PrivateKey.generate()
    untrusted = {fingerprint(other.public_key()): other.public_key()}
    assert digest_coverage(fs, str(tmp_path), objects, untrusted) == {KEY_A: False,
                                                                       KEY_B: False}


def test_only_digests_near_the_delivery_are_read(tmp_path: Path) -> None:
    signer = Ed25519PrivateKey.generate()
    sha_a = put(tmp_path, KEY_A, b"object a", DELIVERED_MS)
    # A digest listing A, but three hours after its delivery: not where A's notice went.
    write_digest(tmp_path, signer, DELIVERED_MS - 20 * 60_000 + 3 * HOUR_MS, HOUR_MS,
                 entry(KEY_A, sha_a))
    assert digest_coverage(pafs.LocalFileSystem(), str(tmp_path), [(KEY_A, sha_a)]) == {
        KEY_A: False}
    assert digest_coverage(pafs.LocalFileSystem(), str(tmp_path), []) == {}


def test_manifest_records_lake_objects_and_counts_per_source(tmp_path: Path) -> None:
    out = tmp_path / "case.jsonl"
    out.write_bytes(b"{}\n")
    objects = lake_objects([(KEY_B, 7, "b" * 64), (KEY_A, 5, "a" * 64)], {KEY_A: True})
    manifest = Manifest.model_validate({
        "command": ["trailpipe", "replay"], "filters": {}, "run_at": "2024-03-12T10:00:00.000Z",
        "lake_objects": [o.model_dump() for o in objects], "records_in": 9, "records_out": 4,
        "counts_by_source": {"kafka": {"records_in": 4, "records_out": 2},
                             "lake": {"records_in": 5, "records_out": 3}},
        "duplicates_dropped": 1, "complete": True,
        "output": describe_output(out).model_dump()})
    write_manifest(out, manifest, signing_key=None)
    assert verify(out, public_key=None) == []
    doc = json.loads((tmp_path / "case.jsonl.manifest.json").read_bytes())
    assert doc["lake_objects"] == [
        {"key": KEY_A, "size_bytes": 5, "sha256": "a" * 64, "digest_covered": True},
        {"key": KEY_B, "size_bytes": 7, "sha256": "b" * 64, "digest_covered": False}]
    assert doc["counts_by_source"]["lake"] == {"records_in": 5, "records_out": 3}


def test_a_manifest_written_before_the_lake_fields_still_verifies(tmp_path: Path) -> None:
    out = tmp_path / "old.jsonl"
    out.write_bytes(b"{}\n")
    described: OutputFile = describe_output(out)
    old = {"format_version": 1, "command": ["trailpipe", "replay"], "filters": {},
           "tool_version": "0.1.0", "operator": "a@h", "run_at": "2024-03-12T10:00:00.000Z",
           "topic_partitions": [], "lake_objects": [], "records_in": 1, "records_out": 1,
           "complete": True, "output": described.model_dump(),
           "public_key_fingerprint": None, "signature": None}
    (tmp_path / "old.jsonl.manifest.json").write_bytes(canonical_json(old))
    assert verify(out, public_key=None) == []
