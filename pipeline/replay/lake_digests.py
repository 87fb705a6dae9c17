"""Whether a digest covers the lake objects a replay read (for the manifest's lake objects).

Contract. An object is *covered* when a digest lists its key with the SHA-256 of the bytes the
replay read and, when trusted keys are given, that digest's signature verifies against one of
them (what ``lake validate`` checks for a listed object; a digest that does not parse or
verify covers nothing). Digests list objects by *delivery* time, so the digests read are those
starting within :data:`SLACK_MS` of each object's modification time (the upload, just before
its delivery notice), whatever the lake's digest period: one listing of each UTC day folder
concerned, and each digest read once. An object delivered less than a digest period ago is
not covered yet (its digest is not written), like ``lake validate``'s ``pending``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pyarrow.fs as pafs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pipeline.lake.digest.model import DigestFormatError, parse_digest, verify_signature
from pipeline.lake.digest.period import start_of_digest_key
from pipeline.lake.layout import DIGESTS_DIR, HOUR_MS

SLACK_MS = HOUR_MS
"""Digests starting up to this long before or after an object's modification time are read
(clock skew between the store and the archiver, a delivery retried)."""
DAY_MS = 24 * HOUR_MS


def digest_coverage(fs: pafs.FileSystem, lake_root: str, objects: Sequence[tuple[str, str]],
                    trusted: Mapping[str, Ed25519PublicKey] | None = None) -> dict[str, bool]:
    """``{key: covered}`` for each ``(key, sha256)`` in ``objects`` (keys relative to
    ``lake_root``, the lake's base path as ``fs`` names it); see the module contract.
    Raises OSError when the store cannot be listed or read."""
    if not objects:
        return {}
    root = lake_root.rstrip("/")
    infos = fs.get_file_info([f"{root}/{key}" for key, _ in objects])
    times = [int(i.mtime.timestamp() * 1000) for i in infos if i.mtime is not None]
    wanted = _digest_keys(fs, root, times)
    listed: set[tuple[str, str]] = set()
    for key in sorted(wanted):
        listed |= _listed(fs, root, key, trusted)
    return {key: (key, sha) in listed for key, sha in objects}


def _digest_keys(fs: pafs.FileSystem, root: str, times_ms: Sequence[int]) -> set[str]:
    """Keys of the digests starting within SLACK_MS of any of ``times_ms``."""
    spans = [(t - SLACK_MS, t + SLACK_MS) for t in times_ms]
    days = {_day_folder(ms) for lo, hi in spans for ms in range(lo - lo % DAY_MS, hi + 1, DAY_MS)}
    out: set[str] = set()
    for day in sorted(days):
        selector = pafs.FileSelector(f"{root}/{DIGESTS_DIR}/{day}", allow_not_found=True)
        for info in fs.get_file_info(selector):
            key = info.path[len(root) + 1:]
            start = start_of_digest_key(key)
            if start is not None and any(lo <= start <= hi for lo, hi in spans):
                out.add(key)
    return out


def _listed(fs: pafs.FileSystem, root: str, key: str,
            trusted: Mapping[str, Ed25519PublicKey] | None) -> set[tuple[str, str]]:
    """(key, sha256) of every object the digest at ``key`` lists; empty when it does not
    parse or (with ``trusted``) does not verify."""
    with fs.open_input_stream(f"{root}/{key}") as stream:
        body = stream.read()
    try:
        digest = parse_digest(key, body)
    except DigestFormatError:
        return set()
    if trusted is not None and verify_signature(digest, trusted) is not None:
        return set()
    return {(o.key, o.sha256) for o in digest.objects}


def _day_folder(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y/%m/%d")
