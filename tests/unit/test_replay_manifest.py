"""The replay manifest: canonical bytes, signing, and what ``verify`` reports. Local files
only (pytest's tmp_path)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from pipeline.lake.keys import fingerprint
from pipeline.replay.manifest import (
    LakeObject,
    Manifest,
    PartitionRange,
    describe_output,
    manifest_path,
    verify,
    write_manifest,
)

KEY_A = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEY_B = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
CONTENT = b'{"eventID":"e1","eventTime":"2024-03-10T08:00:00Z"}\n' * 3


def pem(path: Path, key: Ed25519PrivateKey, *, public: bool = False) -> Path:
    if public:
        data = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    path.write_bytes(data)
    return path


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    return {"a": pem(tmp_path / "a.pem", KEY_A), "a_pub": pem(tmp_path / "a.pub", KEY_A,
                                                             public=True),
            "b": pem(tmp_path / "b.pem", KEY_B), "b_pub": pem(tmp_path / "b.pub", KEY_B,
                                                             public=True)}


def make_manifest(output: Path, *, complete: bool = True, objects_reversed: bool = False,
                  **filters: Any) -> Manifest:
    objects = [LakeObject(key=f"events/account=1/region=r/o{i}.parquet", sha256=f"{i:064x}",
                          size_bytes=100 + i, digest_covered=i % 2 == 0) for i in range(3)]
    return Manifest(
        command=["trailpipe", "replay", "--from", "2024-03-10T08:00:00Z", "--out", output.name],
        filters=filters or {"from": "2024-03-10T08:00:00Z", "account": ["111122223333"],
                            "error": False},
        tool_version="0.1.0", operator="analyst@host", run_at="2024-03-12T10:00:00.000Z",
        topic_partitions=[PartitionRange(topic="audit.events.v1", partition=p, start_offset=10,
                                         end_offset=20, high_watermark=25) for p in (3, 1)],
        lake_objects=objects[::-1] if objects_reversed else objects,
        records_in=30, records_out=3, complete=complete, output=describe_output(output))


@pytest.fixture
def output(tmp_path: Path) -> Path:
    path = tmp_path / "case.jsonl"
    path.write_bytes(CONTENT)
    return path


def stored(output: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(manifest_path(output).read_bytes())
    return doc


def rewrite(output: Path, doc: dict[str, Any]) -> None:
    """Store ``doc`` canonically, as an editor who knows the format would."""
    manifest_path(output).write_bytes(
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def kinds(problems: list[str]) -> list[str]:
    return [p.split(":", 1)[0] for p in problems]


def test_unsigned_round_trip_describes_the_file(output: Path) -> None:
    path = write_manifest(output, make_manifest(output), signing_key=None)
    assert path == output.with_name("case.jsonl.manifest.json")
    doc = stored(output)
    assert doc["output"] == {"name": "case.jsonl", "size_bytes": len(CONTENT),
                             "sha256": hashlib.sha256(CONTENT).hexdigest()}
    assert doc["signature"] is None and doc["public_key_fingerprint"] is None
    assert verify(output, public_key=None) == []


def test_signed_round_trip_and_the_documented_signed_bytes(output: Path,
                                                          keys: dict[str, Path]) -> None:
    write_manifest(output, make_manifest(output), signing_key=keys["a"])
    assert verify(output, public_key=keys["a_pub"]) == []
    assert verify(output, public_key=keys["a"]) == []  # a private key PEM names its public half
    doc = stored(output)
    assert doc["public_key_fingerprint"] == fingerprint(KEY_A.public_key())
    # The contract: Ed25519 over the compact sorted-key JSON of everything but "signature".
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    payload = json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode()
    KEY_A.public_key().verify(base64.b64decode(doc["signature"]), payload)


def test_a_flipped_byte_in_the_output_is_a_sha256_mismatch(output: Path,
                                                          keys: dict[str, Path]) -> None:
    write_manifest(output, make_manifest(output), signing_key=keys["a"])
    data = bytearray(CONTENT)
    data[5] ^= 0x01
    output.write_bytes(bytes(data))
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["sha256_mismatch"]
    output.write_bytes(CONTENT + b"\n")
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["size_mismatch",
                                                               "sha256_mismatch"]


def test_an_edited_count_breaks_the_signature(output: Path, keys: dict[str, Path]) -> None:
    write_manifest(output, make_manifest(output), signing_key=keys["a"])
    doc = stored(output)
    doc["records_out"] += 1
    rewrite(output, doc)
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["bad_signature"]


def test_a_signature_from_another_key(output: Path, keys: dict[str, Path]) -> None:
    write_manifest(output, make_manifest(output), signing_key=keys["b"])
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["untrusted_key"]
    # A forger who re-signs an edit with their key but keeps the trusted fingerprint:
    doc = stored(output)
    doc["records_out"] = 0
    doc["public_key_fingerprint"] = fingerprint(KEY_A.public_key())
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    doc["signature"] = base64.b64encode(KEY_B.sign(json.dumps(
        unsigned, sort_keys=True, separators=(",", ":")).encode())).decode()
    rewrite(output, doc)
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["bad_signature"]


def test_an_unsigned_manifest_fails_when_a_key_is_given(output: Path,
                                                       keys: dict[str, Path]) -> None:
    write_manifest(output, make_manifest(output), signing_key=None)
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["unsigned"]


def test_missing_files(output: Path) -> None:
    write_manifest(output, make_manifest(output), signing_key=None)
    output.unlink()
    assert kinds(verify(output, public_key=None)) == ["output_missing"]
    manifest_path(output).unlink()
    assert kinds(verify(output, public_key=None)) == ["manifest_missing", "output_missing"]


def test_an_incomplete_run_is_reported(output: Path, keys: dict[str, Path]) -> None:
    write_manifest(output, make_manifest(output, complete=False), signing_key=keys["a"])
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["incomplete"]


def test_canonical_bytes_are_identical_for_the_same_inputs(output: Path,
                                                          keys: dict[str, Path]) -> None:
    filters_1 = {"from": "2024-03-10T08:00:00Z", "region": "eu-west-1", "error": True}
    filters_2 = {"error": True, "region": "eu-west-1", "from": "2024-03-10T08:00:00Z"}
    one = make_manifest(output, **filters_1)
    two = make_manifest(output, objects_reversed=True, **filters_2)
    assert one.canonical_bytes() == two.canonical_bytes()
    assert b" " not in one.canonical_bytes() and b"\n" not in one.canonical_bytes()
    write_manifest(output, one, signing_key=keys["a"])
    first = manifest_path(output).read_bytes()
    write_manifest(output, two, signing_key=keys["a"])
    assert manifest_path(output).read_bytes() == first
    doc = json.loads(first)
    assert [p["partition"] for p in doc["topic_partitions"]] == [1, 3]
    assert first == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_a_reformatted_manifest_is_not_canonical_but_still_signed(
        output: Path, keys: dict[str, Path]) -> None:
    write_manifest(output, make_manifest(output), signing_key=keys["a"])
    manifest_path(output).write_text(json.dumps(stored(output), indent=2))
    assert kinds(verify(output, public_key=keys["a_pub"])) == ["not_canonical"]


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"format_version": 1}'])
def test_a_manifest_that_is_not_one(output: Path, body: bytes) -> None:
    manifest_path(output).write_bytes(body)
    assert kinds(verify(output, public_key=None)) == ["manifest_invalid"]


def test_a_float_count_is_not_a_manifest(output: Path) -> None:
    write_manifest(output, make_manifest(output), signing_key=None)
    doc = stored(output)
    doc["records_in"] = 30.0
    rewrite(output, doc)
    assert kinds(verify(output, public_key=None)) == ["manifest_invalid"]


def test_write_refuses_a_manifest_that_does_not_describe_the_file(output: Path) -> None:
    manifest = make_manifest(output)
    output.write_bytes(CONTENT + b"more")
    with pytest.raises(ValueError, match="bytes"):
        write_manifest(output, manifest, signing_key=None)
    assert not manifest_path(output).exists()


@pytest.mark.parametrize("run_at", ["2024-03-12T10:00:00Z", "2024-03-12T11:00:00.000+01:00",
                                    "yesterday"])
def test_run_at_has_one_utc_spelling(output: Path, run_at: str) -> None:
    with pytest.raises(ValidationError, match="run_at"):
        Manifest.model_validate({**make_manifest(output).document(), "run_at": run_at})
