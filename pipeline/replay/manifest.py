"""Chain of custody for a replay output: the manifest beside the file, and ``replay verify``.

A replay that writes ``FILE`` writes ``FILE.manifest.json`` (:func:`manifest_path`) once the
file is closed, also after Ctrl-C (then ``complete`` is false). It records what was run
(argv, filters, tool version, operator, run time), what was read (topic partitions with
offset ranges and the high watermarks captured at start; lake objects with their size,
SHA-256 and whether a digest covers them), the counts (in total, per source, and the rows the
seam dropped as read from both), and the output's SHA-256 and size. The source models are in
:mod:`pipeline.replay.manifest_sources`.

Stored form: exactly :func:`pipeline.lake.digest.model.canonical_json` of the manifest
object (sorted keys, no whitespace, UTF-8, no floats, no trailing newline), so the same
manifest always has the same bytes. Lists of sources are sorted (topic, partition; lake key).

Signature (when the lake's digest key is configured): the manifest gets
``public_key_fingerprint`` (hex SHA-256 of the raw 32-byte Ed25519 public key, as digests
name their key) and ``signature``: base64 of the Ed25519 signature over
``canonical_json`` of the manifest object with every member except ``signature`` (the
fingerprint included), i.e. :func:`pipeline.lake.digest.model.signing_payload` of it, the
same rule digests are signed by. Unsigned manifests have both members null.

What :func:`verify` proves: without a public key, only that the file matches the size and
SHA-256 in its manifest (anyone can rewrite an unsigned manifest). With the public key, also
that the manifest is the one the key holder wrote, unchanged.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import json
import os
import socket
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from pipeline.lake.digest.model import canonical_json, iso_ms, parse_iso_ms, signing_payload
from pipeline.lake.keys import fingerprint, load_private_key, load_public_key
from pipeline.replay.manifest_sources import (
    Frozen,
    LakeObject,
    PartitionRange,
    SourceCounts,
    lake_objects,
)

__all__ = ["LakeObject", "Manifest", "OutputFile", "PartitionRange", "SourceCounts",
           "describe_output", "lake_objects", "manifest_path", "sign", "verify",
           "write_manifest"]

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT_VERSION: Literal[1] = 1
_CHUNK_BYTES = 1 << 20

FilterValue = StrictStr | StrictInt | StrictBool | list[StrictStr] | None


def manifest_path(output: Path) -> Path:
    """``<output>.manifest.json``, beside the output."""
    return output.with_name(output.name + MANIFEST_SUFFIX)


def tool_version() -> str:
    """The installed trailpipe version, or ``unknown`` when it is not installed."""
    try:
        return version("trailpipe")
    except PackageNotFoundError:
        return "unknown"


def operator() -> str:
    """``user@host`` of the process; the uid stands in when the user has no name."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        user = f"uid-{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class OutputFile(Frozen):
    """The output file: its name (informational: it is not checked, so a file and its
    manifest may be renamed together), size and SHA-256 of its bytes."""

    name: StrictStr
    size_bytes: StrictInt = Field(ge=0)
    sha256: StrictStr


class Manifest(Frozen):
    """The custody record of one replay output; see the module docstring."""

    format_version: Literal[1] = MANIFEST_FORMAT_VERSION
    command: list[StrictStr]
    filters: dict[str, FilterValue]
    tool_version: StrictStr = Field(default_factory=tool_version)
    operator: StrictStr = Field(default_factory=operator)
    run_at: StrictStr
    topic_partitions: tuple[PartitionRange, ...] = ()
    lake_objects: tuple[LakeObject, ...] = ()
    records_in: StrictInt = Field(ge=0)
    records_out: StrictInt = Field(ge=0)
    counts_by_source: dict[Literal["kafka", "lake"], SourceCounts] = Field(
        default_factory=dict)
    duplicates_dropped: StrictInt = Field(default=0, ge=0)
    complete: StrictBool
    output: OutputFile
    public_key_fingerprint: StrictStr | None = None
    signature: StrictStr | None = None

    @field_validator("run_at")
    @classmethod
    def _utc_iso_ms(cls, value: str) -> str:
        # One spelling per instant, so equal manifests have equal bytes.
        try:
            ok = iso_ms(parse_iso_ms(value)) == value
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"run_at must be UTC like 2024-03-10T08:00:00.000Z, not {value!r}")
        return value

    @field_validator("topic_partitions")
    @classmethod
    def _sorted_partitions(cls, value: tuple[PartitionRange, ...]
                           ) -> tuple[PartitionRange, ...]:
        return tuple(sorted(value, key=lambda p: (p.topic, p.partition)))

    @field_validator("lake_objects")
    @classmethod
    def _sorted_objects(cls, value: tuple[LakeObject, ...]) -> tuple[LakeObject, ...]:
        return tuple(sorted(value, key=lambda o: o.key))

    def document(self) -> dict[str, Any]:
        """The manifest as a JSON object (what is stored and signed)."""
        return self.model_dump(mode="json")

    def canonical_bytes(self) -> bytes:
        """The stored bytes: canonical JSON of :meth:`document`."""
        return canonical_json(self.document())


def describe_output(output: Path) -> OutputFile:
    """Size and SHA-256 of ``output`` as it is on disk (read once, in chunks). Raises
    OSError when it cannot be read."""
    sha = hashlib.sha256()
    size = 0
    with output.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            sha.update(chunk)
            size += len(chunk)
    return OutputFile(name=output.name, size_bytes=size, sha256=sha.hexdigest())


def sign(manifest: Manifest, signing_key: Path | str) -> Manifest:
    """``manifest`` with ``public_key_fingerprint`` and ``signature`` set by the Ed25519
    private key ``signing_key``, PEM text or a PEM file (the lake's digest key).
    Deterministic.
    Raises SigningKeyError when the key cannot be loaded."""
    key = load_private_key(str(signing_key))
    doc = manifest.document()
    doc["public_key_fingerprint"] = fingerprint(key.public_key())
    doc["signature"] = base64.b64encode(key.sign(signing_payload(doc))).decode()
    return Manifest.model_validate(doc)


def write_manifest(output: Path, manifest: Manifest, *, signing_key: Path | str | None
                   ) -> Path:
    """Write ``<output>.manifest.json`` (signed when ``signing_key`` is given) and return its
    path. Call after ``output`` is closed; ``manifest.output`` must describe it
    (:func:`describe_output`, or what the writer hashed as it wrote). The file is replaced
    atomically (temp file + rename). Raises ValueError when the output's size on disk
    differs from the manifest's, SigningKeyError for a bad key, OSError on write errors."""
    on_disk = output.stat().st_size
    if on_disk != manifest.output.size_bytes:
        raise ValueError(f"{output} has {on_disk} bytes, the manifest says "
                         f"{manifest.output.size_bytes}")
    if signing_key is not None:
        manifest = sign(manifest, signing_key)
    path = manifest_path(output)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(manifest.canonical_bytes())
    os.replace(tmp, path)
    return path


def verify(output: Path, *, public_key: Path | str | None) -> list[str]:
    """Check ``output`` against ``<output>.manifest.json``; return the problems, each
    ``"<kind>: <detail>"`` (empty list = valid). Kinds: ``manifest_missing``,
    ``manifest_invalid`` (not JSON or not a manifest), ``not_canonical`` (stored bytes are
    not the canonical JSON: edited after writing), ``output_missing``, ``size_mismatch``,
    ``sha256_mismatch``, ``unsigned`` (a key was given but the manifest has no signature),
    ``untrusted_key`` (signed by another key), ``bad_signature`` (the manifest was edited),
    ``incomplete`` (the run was stopped; the file is a partial result). The signature is
    checked only when ``public_key`` (PEM text or a PEM file; a private key works too) is
    given.
    Raises SigningKeyError when that key cannot be loaded."""
    key = load_public_key(str(public_key)) if public_key is not None else None
    path = manifest_path(output)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [f"manifest_missing: {path} does not exist", *_output_missing(output)]
    except OSError as exc:
        return [f"manifest_missing: cannot read {path}: {exc.strerror or exc}"]
    parsed = _parse(raw)
    if isinstance(parsed, str):
        return [f"manifest_invalid: {path}: {parsed}"]
    doc, manifest = parsed
    problems = [] if raw == canonical_json(doc) else [
        f"not_canonical: {path} is not in its canonical JSON form (edited after writing)"]
    problems += _check_output(output, manifest.output)
    if key is not None:
        problems += _check_signature(doc, key)
    if not manifest.complete:
        problems.append("incomplete: the run was stopped before its end; the file holds "
                        "a partial result")
    return problems


def _parse(raw: bytes) -> tuple[dict[str, Any], Manifest] | str:
    """(document, manifest) of stored bytes, or why they are not a manifest."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            return "not a JSON object"
        return doc, Manifest.model_validate(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not JSON ({exc})"
    except ValidationError as exc:
        return f"{exc.error_count()} field error(s): " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _output_missing(output: Path) -> list[str]:
    return [] if output.exists() else [f"output_missing: {output} does not exist"]


def _check_output(output: Path, expected: OutputFile) -> list[str]:
    try:
        actual = describe_output(output)
    except FileNotFoundError:
        return [f"output_missing: {output} does not exist"]
    except OSError as exc:
        return [f"output_missing: cannot read {output}: {exc.strerror or exc}"]
    problems = []
    if actual.size_bytes != expected.size_bytes:
        problems.append(f"size_mismatch: {output} has {actual.size_bytes} bytes, the "
                        f"manifest says {expected.size_bytes}")
    if actual.sha256 != expected.sha256:
        problems.append(f"sha256_mismatch: {output} has SHA-256 {actual.sha256}, the "
                        f"manifest says {expected.sha256}")
    return problems


def _check_signature(doc: dict[str, Any], key: Ed25519PublicKey) -> list[str]:
    """Problems of the signature over the stored document ``doc`` against ``key``."""
    signature, signed_by = doc.get("signature"), doc.get("public_key_fingerprint")
    if signature is None:
        return ["unsigned: the manifest has no signature, but a public key was given"]
    expected = fingerprint(key)
    if signed_by != expected:
        return [f"untrusted_key: signed by key {signed_by}, not by the given key {expected}"]
    try:
        key.verify(base64.b64decode(signature, validate=True), signing_payload(doc))
    except (InvalidSignature, binascii.Error, ValueError):
        return ["bad_signature: the signature does not verify: the manifest was changed "
                "after it was signed"]
    return []
