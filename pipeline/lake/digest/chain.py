"""Reading the digest chain back from a lake: which digests exist, the latest one, and what
recent digests listed. Shared by the digester (to continue the chain after a restart) and the
validator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pipeline.lake.digest.model import (
    DigestFormatError,
    SignedDigest,
    parse_digest,
    verify_signature,
)
from pipeline.lake.digest.period import start_of_digest_key
from pipeline.lake.layout import DIGESTS_DIR, HOUR_MS
from pipeline.lake.store import ObjectStore, StoreError

DAY_MS = 24 * HOUR_MS


class ChainError(Exception):
    """The chain cannot be continued safely (its latest digest is unreadable or not signed
    by a trusted key); an operator must look at it."""


def digest_starts(store: ObjectStore, prefix: str = f"{DIGESTS_DIR}/") -> dict[int, str]:
    """Every digest in the lake (or under ``prefix``), whatever its period: start (ms) →
    key (one key per start). Other keys under digests/ are ignored. Raises StoreError."""
    out: dict[int, str] = {}
    for info in store.list(prefix):
        start = start_of_digest_key(info.key)
        if start is not None:
            out[start] = info.key
    return out


def _latest_starts(store: ObjectStore, before_ms: int) -> dict[int, str]:
    """Digests starting before ``before_ms``: those of its day's folder, else of the day
    before, else of the whole lake (so a running digester lists a day of keys, not every
    digest ever written: over half a million a year at a 1-minute period)."""
    for day_ms in (before_ms, before_ms - DAY_MS):
        folder = datetime.fromtimestamp(day_ms / 1000, tz=UTC).strftime("%Y/%m/%d")
        found = {s: k for s, k in digest_starts(store, f"{DIGESTS_DIR}/{folder}/").items()
                 if s < before_ms}
        if found:
            return found
    return {s: k for s, k in digest_starts(store).items() if s < before_ms}


def read_digest(store: ObjectStore, key: str) -> SignedDigest:
    """Fetch and parse one digest. Raises StoreError or DigestFormatError."""
    return parse_digest(key, store.get(key))


def find_head(store: ObjectStore, before_ms: int,
              keys: Mapping[str, Ed25519PublicKey]) -> SignedDigest | None:
    """The latest digest that starts before ``before_ms`` (digests claiming a later start
    are ignored), whatever its period, verified against ``keys``; None when the lake has
    none. Raises ChainError when it is unreadable or not validly signed, StoreError on I/O."""
    starts = _latest_starts(store, before_ms)
    if not starts:
        return None
    key = starts[max(starts)]
    try:
        head = read_digest(store, key)
    except DigestFormatError as exc:
        raise ChainError(f"latest digest {key} is malformed: {exc}") from exc
    problem = verify_signature(head, keys)
    if problem is not None:
        raise ChainError(f"latest digest {key}: {problem}; refusing to continue the chain "
                         "from it (configure digest.trusted_public_keys after a key rotation)")
    return head


@dataclass(slots=True)
class Listings:
    """What recent digests listed: the newest SHA-256 listed per object key and the
    (replaced, by) of compactions, each with the start of the digest that listed it."""

    objects: dict[str, tuple[str, int]] = field(default_factory=dict)
    compactions: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = field(default_factory=dict)

    def add(self, digest: SignedDigest, *, older: bool = False) -> None:
        """Record a digest's listings; ``older``: it precedes everything recorded so far."""
        for o in digest.objects:
            if not (older and o.key in self.objects):
                self.objects[o.key] = (o.sha256, digest.start_ms)
        for c in digest.compactions:
            self.compactions.setdefault((c.replaced, c.by), digest.start_ms)

    def lists(self, key: str, sha256: str) -> bool:
        """True when the newest listing of ``key`` has this SHA-256."""
        return self.objects.get(key, ("", 0))[0] == sha256

    def prune(self, older_than_ms: int) -> None:
        """Forget what digests before ``older_than_ms`` listed (bounds memory)."""
        self.objects = {k: v for k, v in self.objects.items() if v[1] >= older_than_ms}
        self.compactions = {k: h for k, h in self.compactions.items() if h >= older_than_ms}


def recent_listings(store: ObjectStore, head: SignedDigest, hours: int) -> Listings:
    """Listings of ``head`` and the digests before it, following ``previous`` links back
    over digests starting in the last ``hours`` hours before ``head`` ends, whatever their
    periods (stops early at the chain start or a missing digest). One read per digest: at a
    1-minute period, 48 hours are 2,880 reads. Raises StoreError on I/O other than a
    missing digest."""
    out = Listings()
    out.add(head)
    current = head
    oldest = head.end_ms - hours * HOUR_MS
    while current.doc["previous"] is not None:
        prev_key = str(current.doc["previous"]["key"])
        prev_start = start_of_digest_key(prev_key)
        if prev_start is None or prev_start < oldest:
            break
        try:
            current = read_digest(store, prev_key)
        except DigestFormatError:
            break
        except StoreError as exc:
            if exc.code in ("NoSuchKey", "404", "NotFound"):
                break
            raise
        out.add(current, older=True)
    return out
