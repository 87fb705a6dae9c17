"""``lake validate``: verify the digest chain, every signature, every listed object's SHA-256,
and find objects no digest lists. Works on any copy of a lake: keys are relative to the store.

Digests of any period (``[digest] period_ms``), and lakes whose period changed midway, are
validated alike: each digest records its span and period, and must start where the previous
one ends. Scope: digests that start in ``[from, to)`` (``from`` floored to the hour; each
bound optional): their signatures, chain links and listed objects are checked. Without
``from`` the chain must start with ``previous: null``; with it, the link into the range is
checked when the digest before it exists. With ``to``, digests must cover the range up to
``to`` (so deleting the newest digests is caught); without it, the newest digest cannot be told
from a deleted later one, and objects newer than it are ``pending``. Objects under ``events/``
whose event hour is in the range must be listed in a digest of the range or, with ``to``, in
a (validly signed) digest of the following ``LATE_WINDOW_HOURS``.
See :mod:`pipeline.lake.digest.verify` for the problem kinds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pipeline.lake.digest.chain import digest_starts, read_digest
from pipeline.lake.digest.model import (
    DigestFormatError,
    ObjectEntry,
    SignedDigest,
    iso_ms,
    verify_signature,
)
from pipeline.lake.digest.period import MINUTE_MS, start_of_digest_key
from pipeline.lake.digest.verify import (
    Problem,
    check_chain,
    check_object,
    expectations,
    unlisted,
)
from pipeline.lake.layout import EVENTS_DIR, HOUR_MS, digest_key, hour_start
from pipeline.lake.store import ObjectStore, StoreError

_ABSENT = ("NoSuchKey", "404", "NotFound")
LATE_WINDOW_HOURS = 168
"""With ``to``: digests up to this long after it are read for their listings only, so an
object of the range delivered late is not reported unlisted."""


@dataclass(slots=True)
class Report:
    """The outcome: every problem found and what was covered (``first_hour_ms`` and
    ``last_hour_ms`` are the starts of the first and last digest checked, whatever their
    periods). ``ok`` when no failure."""

    problems: list[Problem]
    digests: int
    first_hour_ms: int | None
    last_hour_ms: int | None
    objects_verified: int
    objects_scanned: int

    @property
    def ok(self) -> bool:
        return not any(p.failure for p in self.problems)

    @property
    def failures(self) -> int:
        return sum(p.failure for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "failures": self.failures, "digests": self.digests,
                "first_hour_ms": self.first_hour_ms, "last_hour_ms": self.last_hour_ms,
                "objects_verified": self.objects_verified,
                "objects_scanned": self.objects_scanned,
                "problems": [p.to_dict() for p in self.problems]}


def validate_lake(store: ObjectStore, keys: Mapping[str, Ed25519PublicKey], *,
                  from_ms: int | None = None, to_ms: int | None = None,
                  late_window_hours: int = LATE_WINDOW_HOURS, workers: int = 8) -> Report:
    """Validate ``store`` against the trusted ``keys`` (by fingerprint). Never raises for
    problems in the lake (they are in the report); raises StoreError when listing fails."""
    from_h = hour_start(from_ms) if from_ms is not None else None
    starts = digest_starts(store)
    walk = sorted(h for h in starts if (from_h is None or h >= from_h)
                  and (to_ms is None or h < to_ms))
    tail_end = (to_ms or 0) + late_window_hours * HOUR_MS
    tail = sorted(h for h in starts if to_ms is not None and to_ms <= h < tail_end)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        loaded, problems = _load_digests(store, [starts[h] for h in walk], keys, pool)
        problems += _chain_problems(store, loaded, walk, from_h, to_ms)
        later, _ = _load_digests(store, [starts[h] for h in tail], keys, pool,
                                 trusted_only=True)
        exp = expectations([*loaded, *later])
        problems += exp.unlisted_replacements()
        verify = [(e, d) for e, d in exp.objects.values()
                  if to_ms is None or d.start_ms < to_ms]
        problems += _object_problems(store, verify, exp.replaced, pool)
    scanned = [o.key for o in store.list(f"{EVENTS_DIR}/")]
    problems += unlisted(scanned, exp, newest_digest_start=max(starts, default=None),
                         from_ms=from_h, to_ms=to_ms)
    return Report(problems, len(loaded), walk[0] if walk else None,
                  walk[-1] if walk else None, len(verify), len(scanned))


def _load_digests(store: ObjectStore, keys: Sequence[str],
                  trusted: Mapping[str, Ed25519PublicKey], pool: ThreadPoolExecutor, *,
                  trusted_only: bool = False) -> tuple[list[SignedDigest], list[Problem]]:
    """Fetch, parse and signature-check digests. Digests with a bad signature are still
    returned (their failure is reported; their listings avoid a cascade of noise), unless
    ``trusted_only``."""
    def load(key: str) -> SignedDigest | Problem:
        try:
            return read_digest(store, key)
        except DigestFormatError as exc:
            return Problem("digest_invalid", key, str(exc))
        except StoreError as exc:
            return Problem("unreadable", key, f"{exc.code}: {exc}")

    loaded: list[SignedDigest] = []
    problems: list[Problem] = []
    for result in pool.map(load, keys):
        if isinstance(result, Problem):
            problems.append(result)
            continue
        kind = verify_signature(result, trusted)
        if kind is None or not trusted_only:
            loaded.append(result)
        if kind is not None:
            detail = (f"signed by {result.doc['public_key_fingerprint']}, not a trusted key"
                      if kind == "untrusted_key" else "signature does not verify")
            problems.append(Problem(kind, result.key, detail))
    return loaded, problems


def _chain_problems(store: ObjectStore, loaded: list[SignedDigest], walk: list[int],
                    from_h: int | None, to_ms: int | None) -> list[Problem]:
    """Links, gaps, the link into the range, and (with ``to``) a span missing at the end."""
    unusable = frozenset(walk) - {d.start_ms for d in loaded}
    anchor, strict = None, True
    if loaded and loaded[0].doc["previous"] is not None:
        named_key = str(loaded[0].doc["previous"]["key"])
        named = start_of_digest_key(named_key)
        if named is not None and named < loaded[0].start_ms:
            strict = from_h is None or named >= from_h
            anchor = _maybe_read(store, named_key)
    problems = check_chain(loaded, anchor=anchor, strict_start=strict, unusable_starts=unusable)
    covered = max((d.end_ms for d in loaded), default=from_h)
    if walk and walk[-1] in unusable:  # its span is unknown: only what follows its start
        covered = walk[-1] + MINUTE_MS
    if to_ms is not None and covered is not None and covered < to_ms:
        problems.append(Problem("digest_missing", digest_key(covered),
                                f"expected before --to: no digest covers {iso_ms(covered)} "
                                f".. {iso_ms(to_ms)}"))
    return problems


def _maybe_read(store: ObjectStore, key: str) -> SignedDigest | None:
    try:
        return read_digest(store, key)
    except (StoreError, DigestFormatError):
        return None


def _object_problems(store: ObjectStore, entries: Sequence[tuple[ObjectEntry, SignedDigest]],
                     replaced: set[str], pool: ThreadPoolExecutor) -> list[Problem]:
    def check(item: tuple[ObjectEntry, SignedDigest]) -> Problem | None:
        entry, digest = item
        try:
            data: bytes | None = store.get(entry.key)
        except StoreError as exc:
            if exc.code not in _ABSENT:
                return Problem("unreadable", entry.key, f"{exc.code}: {exc}")
            data = None
        return check_object(entry, data, entry.key in replaced, digest.key)

    return [p for p in pool.map(check, entries) if p is not None]
