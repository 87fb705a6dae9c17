"""The digest format: one signed JSON document per delivery-time period, chained to the
previous.

Why delivery time: a digest lists the objects *delivered* (made durable, with a notice on
``audit.deliveries.v1``) in ``[start, end)``. A late event still lands in the period its
object was delivered, so a closed digest never has to change and the chain is append-only.
(Event-time digests would have to be rewritten, or left incomplete, whenever late data arrives.)

A digest at :func:`pipeline.lake.layout.digest_key` (of its start) is a JSON object::

    version                 2
    start, end              ISO 8601 UTC ("2024-03-10T08:00:00.000Z"), half-open
    period_ms               the digest period it was written under; ``end`` is
                            :func:`~pipeline.lake.digest.period.period_end` of start and period
    lake                    the lake URL it was written for (informational: keys are relative)
    previous                {key, sha256, signature} of the previous digest, null for the first
    objects                 [{key, sha256, bytes, records, topic, partition, first_offset,
                              last_offset}] sorted by key
    compactions             [{replaced: [keys], by: [keys]}]: objects replaced by others
    public_key_fingerprint  hex SHA-256 of the raw Ed25519 public key that signed it
    signed_at               ISO 8601 UTC
    signature               base64 Ed25519 signature of canonical_json(everything else)

Version 1 digests (written before the period was configurable) have ``hour_start`` and
``hour_end`` instead of ``start``, ``end`` and ``period_ms``: one hour each. Both versions are
read, verified and chained alike, so a lake may hold hourly version 1 digests followed by
digests of any period.

``previous.sha256`` is the SHA-256 of the previous digest object's stored bytes, and
``previous.signature`` its ``signature`` field. Stored bytes are ``json.dumps(indent=2,
sort_keys=True)`` plus a newline; the signature does not depend on that formatting.

:func:`canonical_json` is sorted keys, no whitespace, UTF-8, no floats: for these documents
(ASCII member names, integers and strings only) that is the RFC 8785 (JCS) serialization.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.lake.digest.period import (
    MINUTE_MS,
    period_end,
    period_problem,
    start_of_digest_key,
)
from pipeline.lake.keys import fingerprint
from pipeline.lake.layout import HOUR_MS, Delivery, digest_key

DIGEST_VERSION = 2
_TOP_FIELDS = {"version": int, "lake": str, "objects": list, "compactions": list,
               "public_key_fingerprint": str, "signed_at": str, "signature": str}
_SPAN_FIELDS: dict[int, dict[str, type]] = {
    1: {"hour_start": str, "hour_end": str},
    2: {"start": str, "end": str, "period_ms": int}}
_OBJECT_FIELDS = {"key": str, "sha256": str, "bytes": int, "records": int, "topic": str,
                  "partition": int, "first_offset": int, "last_offset": int}


class DigestFormatError(ValueError):
    """A digest document is not valid JSON or lacks a required field of the right type."""


def canonical_json(value: Any) -> bytes:
    """Deterministic bytes of ``value`` (dicts, lists, str, int, bool, None). Raises
    TypeError on floats or other types, whose text form differs between implementations."""
    _reject_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _reject_floats(value: Any) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"canonical JSON keys must be strings, not {type(k).__name__}")
            _reject_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _reject_floats(v)
    elif not (value is None or isinstance(value, str | int | bool)):
        raise TypeError(f"canonical JSON has no {type(value).__name__} values")


def iso_ms(ms: int) -> str:
    """``2024-03-10T08:00:00.000Z`` for a UTC epoch-millisecond time."""
    t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time; naive times are UTC. Raises ValueError."""
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One delivered object as a digest lists it."""

    key: str
    sha256: str
    bytes: int
    records: int
    topic: str
    partition: int
    first_offset: int
    last_offset: int

    @classmethod
    def from_delivery(cls, d: Delivery) -> ObjectEntry:
        return cls(d.key, d.sha256, d.size_bytes, d.records, d.topic, d.partition,
                   d.first_offset, d.last_offset)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ObjectEntry:
        return cls(**{name: doc[name] for name in _OBJECT_FIELDS})


@dataclass(frozen=True, slots=True)
class CompactionEntry:
    """Objects ``replaced`` by the objects ``by`` (which are listed in a digest themselves)."""

    replaced: tuple[str, ...]
    by: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"replaced": list(self.replaced), "by": list(self.by)}


@dataclass(frozen=True, slots=True)
class Compaction:
    """The notice ``lake compact`` publishes on the deliveries topic after it has written and
    announced (with Delivery notices) the replacing objects ``by``, and before it deletes
    ``replaced``. JSON with ``"type": "compaction"`` (Delivery notices carry no ``type``)."""

    lake: str
    replaced: tuple[str, ...]
    by: tuple[str, ...]
    compacted_at_ms: int

    def to_json(self) -> bytes:
        doc = {"type": "compaction", **asdict(self)}
        doc["replaced"], doc["by"] = list(self.replaced), list(self.by)
        return json.dumps(doc, sort_keys=True).encode()

    @property
    def entry(self) -> CompactionEntry:
        return CompactionEntry(self.replaced, self.by)


def parse_notice(raw: bytes | str | None) -> Delivery | Compaction:
    """Decode a record of the deliveries topic. Raises ValueError/TypeError/KeyError on
    anything else (the Runner dead-letters it)."""
    if raw is None:
        raise ValueError("empty notice (tombstone)")
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("a notice is a JSON object")
    if doc.get("type") == "compaction":
        return Compaction(str(doc["lake"]), tuple(map(str, doc["replaced"])),
                          tuple(map(str, doc["by"])), int(doc["compacted_at_ms"]))
    return Delivery(**doc)


@dataclass(frozen=True, slots=True)
class ChainLink:
    """What a digest records about its predecessor."""

    key: str
    sha256: str
    signature: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "sha256": self.sha256, "signature": self.signature}


@dataclass(frozen=True, slots=True)
class SignedDigest:
    """A digest as stored: its key, its span ``[start_ms, end_ms)`` and period, stored
    bytes and parsed document."""

    key: str
    start_ms: int
    end_ms: int
    period_ms: int
    body: bytes
    doc: dict[str, Any]

    @property
    def link(self) -> ChainLink:
        """The ``previous`` entry of the next digest."""
        return ChainLink(self.key, hashlib.sha256(self.body).hexdigest(), self.doc["signature"])

    @property
    def objects(self) -> list[ObjectEntry]:
        return [ObjectEntry.from_dict(o) for o in self.doc["objects"]]

    @property
    def compactions(self) -> list[CompactionEntry]:
        return [CompactionEntry(tuple(c["replaced"]), tuple(c["by"]))
                for c in self.doc["compactions"]]


def signing_payload(doc: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: canonical JSON of every field but ``signature``."""
    return canonical_json({k: v for k, v in doc.items() if k != "signature"})


def build_digest(start_ms: int, *, lake: str, previous: ChainLink | None,
                 objects: Sequence[ObjectEntry], compactions: Sequence[CompactionEntry],
                 signer: Ed25519PrivateKey, signed_at_ms: int,
                 period_ms: int = HOUR_MS) -> SignedDigest:
    """Build and sign the digest starting at ``start_ms`` (a whole minute) under
    ``period_ms`` (an allowed period; it ends at ``period_end(start_ms, period_ms)``).
    Objects are sorted by key; compactions keep their order. Pure apart from the signature
    (Ed25519 is deterministic). Raises ValueError on a bad period or start."""
    problem = period_problem(period_ms) or (
        f"a digest starts on a whole minute, not {iso_ms(start_ms)}" if start_ms % MINUTE_MS
        else None)
    if problem is not None:
        raise ValueError(problem)
    end_ms = period_end(start_ms, period_ms)
    doc: dict[str, Any] = {
        "version": DIGEST_VERSION,
        "start": iso_ms(start_ms),
        "end": iso_ms(end_ms),
        "period_ms": period_ms,
        "lake": lake,
        "previous": previous.to_dict() if previous else None,
        "objects": [asdict(o) for o in sorted(objects, key=lambda o: o.key)],
        "compactions": [c.to_dict() for c in compactions],
        "public_key_fingerprint": fingerprint(signer.public_key()),
        "signed_at": iso_ms(signed_at_ms),
    }
    doc["signature"] = base64.b64encode(signer.sign(signing_payload(doc))).decode()
    body = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    return SignedDigest(digest_key(start_ms), start_ms, end_ms, period_ms, body, doc)


def parse_digest(key: str, body: bytes) -> SignedDigest:
    """Parse a stored digest (version 1 or 2) and check its shape, and that its start, end
    and period agree with its key and each other. Raises DigestFormatError naming the first
    problem."""
    start = start_of_digest_key(key)
    if start is None:
        raise DigestFormatError(f"{key} is not a digest key")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DigestFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DigestFormatError("not a JSON object")
    if doc.get("version") not in _SPAN_FIELDS:
        raise DigestFormatError(f"version {doc.get('version')!r} is not a known digest version")
    _check_fields(doc, {**_SPAN_FIELDS[doc["version"]], **_TOP_FIELDS}, "")
    for i, obj in enumerate(doc["objects"]):
        _check_fields(obj, _OBJECT_FIELDS, f"objects[{i}].")
    for i, comp in enumerate(doc["compactions"]):
        if not (isinstance(comp, dict) and _str_list(comp.get("replaced"))
                and _str_list(comp.get("by"))):
            raise DigestFormatError(f"compactions[{i}] needs lists 'replaced' and 'by'")
    prev = doc.get("previous", "missing")
    if prev is not None and not (isinstance(prev, dict) and all(
            isinstance(prev.get(f), str) for f in ("key", "sha256", "signature"))):
        raise DigestFormatError("'previous' must be null or {key, sha256, signature}")
    end, period = _span(doc, start)
    return SignedDigest(key, start, end, period, body, doc)


def _span(doc: Mapping[str, Any], start: int) -> tuple[int, int]:
    """(end, period) of a shape-checked document whose key names ``start``; raises
    DigestFormatError when its times or period disagree with the key or each other."""
    if doc["version"] == 1:
        if doc["hour_start"] != iso_ms(start) or doc["hour_end"] != iso_ms(start + HOUR_MS) \
                or start % HOUR_MS:
            raise DigestFormatError(f"hour_start {doc['hour_start']} does not match the key")
        return start + HOUR_MS, HOUR_MS
    period = doc["period_ms"]
    problem = period_problem(period)
    if problem is not None:
        raise DigestFormatError(problem)
    end = period_end(start, period)
    if doc["start"] != iso_ms(start) or doc["end"] != iso_ms(end):
        raise DigestFormatError(f"start/end {doc['start']}..{doc['end']} do not match the "
                                f"key and period_ms {period}")
    return end, period


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_fields(doc: Any, fields: Mapping[str, type], where: str) -> None:
    if not isinstance(doc, dict):
        raise DigestFormatError(f"{where or 'document'} is not an object")
    for name, kind in fields.items():
        value = doc.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise DigestFormatError(f"{where}{name} missing or not {kind.__name__}")


def verify_signature(digest: SignedDigest, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None when the digest is signed by one of ``keys`` (by fingerprint); otherwise the
    problem kind: ``untrusted_key`` (fingerprint unknown) or ``bad_signature``."""
    public = keys.get(digest.doc["public_key_fingerprint"])
    if public is None:
        return "untrusted_key"
    try:
        signature = base64.b64decode(digest.doc["signature"], validate=True)
        public.verify(signature, signing_payload(digest.doc))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return "bad_signature"
    return None
