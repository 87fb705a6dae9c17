"""The pure rules of ``lake validate``: chain links, what the digests expect to exist, and
which unlisted objects are failures. No I/O; :mod:`pipeline.lake.validate` feeds it.

Digests may have any allowed period and the period may change along the chain: each digest
must start where the previous one ends and name it as ``previous``.

Problem kinds (``failure=False`` ones are reported but do not fail validation):

    missing               a listed object is absent (and was not replaced by a compaction)
    modified              a listed object's SHA-256 or size differs from its listing
    unlisted              an object under events/ no digest lists
    pending (info)        unlisted, but possibly delivered after the newest digest started
    digest_missing        no digest covers a span inside the chain (named by the key of the
                          digest that should start it), or the one a digest names as
                          previous, or a span before --to
    digest_invalid        a digest is not valid JSON / lacks fields / its span or period
                          mismatches its key
    bad_signature         a digest's signature does not verify
    untrusted_key         a digest is signed by a key that is not trusted
    chain_gap             a digest's ``previous`` is null or names another digest than the one
                          ending where it starts (the chain restarts or skips)
    digest_overlap        a digest starts before the previous one ends
    chain_broken          ``previous.sha256`` / ``previous.signature`` differ from the actual
                          previous digest (it was replaced or altered)
    replacement_unlisted  a compaction's replacing object is listed in no digest
    unreadable            the store refused to return a digest or object
    chain_start_unverified (info)  with --from: the digest before the range is gone
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.lake.digest.model import ObjectEntry, SignedDigest, iso_ms
from pipeline.lake.digest.period import start_of_digest_key
from pipeline.lake.layout import HOUR_MS, digest_key

_EVENT_HOUR_RE = re.compile(r"/date=(\d{4})-(\d\d)-(\d\d)/hour=(\d\d)/")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: its kind, the key it is about, and a human detail."""

    kind: str
    key: str
    detail: str = ""
    failure: bool = True

    def to_dict(self) -> dict[str, str | bool]:
        return {"kind": self.kind, "key": self.key, "detail": self.detail,
                "failure": self.failure}


def check_chain(digests: Sequence[SignedDigest], *, anchor: SignedDigest | None,
                strict_start: bool, unusable_starts: frozenset[int] = frozenset()
                ) -> list[Problem]:
    """Check the links of ``digests`` (sorted by start), whatever their periods. ``anchor``
    is the digest the first one names as previous, if it could be read; with
    ``strict_start`` its absence is a failure, otherwise informational. Starts in
    ``unusable_starts`` have a digest that could not be parsed (reported elsewhere): a span
    that begins with one is not reported missing again."""
    problems: list[Problem] = []
    prev: SignedDigest | None = None
    for d in digests:
        if prev is None:
            problems += _check_start(d, anchor, strict_start)
        elif d.start_ms < prev.end_ms:
            problems.append(Problem("digest_overlap", d.key, f"starts at {iso_ms(d.start_ms)}, "
                                    f"before {prev.key} ends ({iso_ms(prev.end_ms)})"))
            problems += _check_link(d, prev)
        elif d.start_ms > prev.end_ms:
            if prev.end_ms not in unusable_starts:
                problems.append(Problem("digest_missing", digest_key(prev.end_ms),
                                        f"no digest covers {iso_ms(prev.end_ms)} .. "
                                        f"{iso_ms(d.start_ms)}"))
            problems += _check_link(d, None, after_ms=prev.end_ms)
        else:
            problems += _check_link(d, prev)
        prev = d
    return problems


def _check_start(d: SignedDigest, anchor: SignedDigest | None, strict: bool) -> list[Problem]:
    link = d.doc["previous"]
    if link is None:
        return []  # the chain's first digest
    named = start_of_digest_key(link["key"])
    if anchor is None and named is not None and named < d.start_ms:
        if strict:
            return [Problem("digest_missing", link["key"],
                            f"named as previous by {d.key}, not in the lake")]
        return [Problem("chain_start_unverified", link["key"],
                        "the digest before the range is not in the lake", failure=False)]
    if anchor is not None and anchor.end_ms != d.start_ms:
        return [Problem("chain_gap", d.key, f"previous {anchor.key} ends at "
                        f"{iso_ms(anchor.end_ms)}, not where this one starts")]
    return _check_link(d, anchor)


def _check_link(d: SignedDigest, prev: SignedDigest | None, *,
                after_ms: int | None = None) -> list[Problem]:
    """``prev`` is the actual digest ending where ``d`` starts; None when no usable digest
    does (already reported): then ``previous`` must at least name a digest key starting in
    ``[after_ms, d.start_ms)``."""
    link = d.doc["previous"]
    if link is None:
        return [Problem("chain_gap", d.key, "previous is null: the chain restarts here")]
    if prev is None:
        named = start_of_digest_key(link["key"])
        if named is None or named >= d.start_ms or (after_ms is not None and named < after_ms):
            return [Problem("chain_gap", d.key, f"previous names {link['key']}, which cannot "
                            "be the digest before it")]
        return []
    if link["key"] != prev.key:
        return [Problem("chain_gap", d.key, f"previous names {link['key']}, expected {prev.key}")]
    bad = [name for name, actual in (("sha256", hashlib.sha256(prev.body).hexdigest()),
                                     ("signature", prev.doc["signature"]))
           if link[name] != actual]
    if bad:
        return [Problem("chain_broken", d.key,
                        f"previous.{'/'.join(bad)} does not match {prev.key}")]
    return []


@dataclass(slots=True)
class Expectations:
    """What the digests say should exist. For a key listed more than once the latest listing
    wins (an object re-delivered after a crash). ``replaced`` keys may be absent."""

    objects: dict[str, tuple[ObjectEntry, SignedDigest]] = field(default_factory=dict)
    replaced: set[str] = field(default_factory=set)
    replacements: list[tuple[str, str]] = field(default_factory=list)  # (by key, digest key)

    def add(self, d: SignedDigest) -> None:
        """Apply one digest; call in start order. Objects first, then compactions."""
        for o in d.objects:
            self.objects[o.key] = (o, d)
            self.replaced.discard(o.key)
        for c in d.compactions:
            self.replaced.update(k for k in c.replaced if k not in c.by)
            self.replacements += [(k, d.key) for k in c.by]

    def unlisted_replacements(self) -> list[Problem]:
        return [Problem("replacement_unlisted", key, f"compaction in {where} names it")
                for key, where in self.replacements if key not in self.objects]


def expectations(digests: Iterable[SignedDigest]) -> Expectations:
    out = Expectations()
    for d in sorted(digests, key=lambda d: d.start_ms):
        out.add(d)
    return out


def check_object(entry: ObjectEntry, data: bytes | None, replaced: bool,
                 listed_in: str) -> Problem | None:
    """Compare an object's bytes (None: absent) with its listing."""
    if data is None:
        return None if replaced else Problem("missing", entry.key, f"listed in {listed_in}")
    if len(data) != entry.bytes or hashlib.sha256(data).hexdigest() != entry.sha256:
        return Problem("modified", entry.key,
                       f"sha256/size differ from the listing in {listed_in}")
    return None


def event_hour(key: str) -> int | None:
    """The Hive hour partition of an events/ key (ms), None when it has none."""
    m = _EVENT_HOUR_RE.search(f"/{key}")
    if m is None:
        return None
    y, mo, d, h = (int(x) for x in m.groups())
    try:
        return int(datetime(y, mo, d, h, tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        return None


def unlisted(keys: Iterable[str], exp: Expectations, *, newest_digest_start: int | None,
             from_ms: int | None, to_ms: int | None) -> list[Problem]:
    """Problems for object keys no digest lists, limited to event hours in [from, to).
    An object whose event hour ends after the newest digest starts may have been delivered
    after that digest closed: ``pending`` (informational), not ``unlisted``."""
    out: list[Problem] = []
    for key in keys:
        if key in exp.objects or key in exp.replaced:
            continue
        hour = event_hour(key)
        if hour is not None and ((from_ms is not None and hour + HOUR_MS <= from_ms)
                                 or (to_ms is not None and hour >= to_ms)):
            continue
        if (hour is not None and newest_digest_start is not None
                and hour + HOUR_MS > newest_digest_start):
            out.append(Problem("pending", key, "not in a digest yet (its event hour is not "
                               "older than the newest digest)", failure=False))
        else:
            out.append(Problem("unlisted", key, "in the lake but listed in no digest"))
    return out
