"""The changelog form of an engine's state: small entries per key, so a minute rewrites only
what it changed (the key's current baseline bucket, and its open insights).

Keys (fields joined with ``\\x1f``, which CloudTrail names never contain):

- ``insight\\x1fm\\x1f<account>\\x1f<region>\\x1f<eventSource>\\x1f<eventName>``: the key's
  meta (first minute seen, open insights);
- ``insight\\x1fb\\x1f<account>\\x1f<region>\\x1f<eventSource>\\x1f<eventName>\\x1f<index>``:
  one baseline bucket.

A value is an orjson array whose first element is the format version; any other version raises
:class:`InsightStateError`. Round trips are exact (floats included).
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.changelog import load_versioned
from pipeline.insights.baseline import Bucket, Snapshot
from pipeline.insights.detector import OpenInsight
from pipeline.insights.event import InsightKey

VERSION = 1
_SEP = "\x1f"
_PREFIX = "insight"


class InsightStateError(ValueError):
    """A changelog entry this build cannot read."""


def meta_key(key: InsightKey) -> str:
    return _SEP.join((_PREFIX, "m", *key))


def bucket_key(key: InsightKey, index: int) -> str:
    return _SEP.join((_PREFIX, "b", *key, str(index)))


def parse_key(text: str) -> tuple[str, InsightKey, int]:
    """``("m", key, 0)`` or ``("b", key, bucket index)``; InsightStateError otherwise."""
    parts = text.split(_SEP)
    try:
        if parts[0] == _PREFIX and parts[1] == "m" and len(parts) == 6:
            return "m", (parts[2], parts[3], parts[4], parts[5]), 0
        if parts[0] == _PREFIX and parts[1] == "b" and len(parts) == 7:
            return "b", (parts[2], parts[3], parts[4], parts[5]), int(parts[6])
    except (IndexError, ValueError):
        pass
    raise InsightStateError(f"not an insights state key: {text!r}")


def _load(value: bytes) -> list[Any]:
    return load_versioned(value, VERSION, InsightStateError, "insights state entry")


def encode_meta(first_ms: int, opened: list[OpenInsight | None]) -> bytes:
    return orjson.dumps([VERSION, first_ms, *(_open_fields(o) for o in opened)])


def decode_meta(value: bytes) -> tuple[int, list[OpenInsight | None]]:
    """The first minute seen (ms) and the open (call-rate, error-rate) insights."""
    fields = _load(value)
    try:
        return int(fields[1]), [_open_of(f) for f in fields[2:4]]
    except (TypeError, ValueError, IndexError) as exc:
        raise InsightStateError(f"malformed insights meta entry: {exc}") from exc


def encode_bucket(bucket: Bucket) -> bytes:
    return orjson.dumps([VERSION, bucket.skip, bucket.calls, bucket.calls_sq, bucket.errors,
                         bucket.counts])


def decode_bucket(value: bytes) -> Bucket:
    fields = _load(value)
    try:
        _, skip, calls, calls_sq, errors, counts = fields
        return Bucket(int(skip), int(calls), int(calls_sq), int(errors), dict(counts))
    except (TypeError, ValueError) as exc:
        raise InsightStateError(f"malformed insights bucket entry: {exc}") from exc


def _open_fields(o: OpenInsight | None) -> list[Any] | None:
    if o is None:
        return None
    b = o.baseline
    return [o.kind, o.start_ms, [b.minutes, b.mean, b.std, b.calls, b.errors], o.baseline_top,
            o.minutes, o.calls, o.errors, o.counts, o.pending]


def _open_of(fields: list[Any] | None) -> OpenInsight | None:
    if fields is None:
        return None
    kind, start_ms, (b_minutes, mean, std, b_calls, b_errors), tops, n, calls, errors, counts, \
        pending = fields
    return OpenInsight(
        str(kind), int(start_ms),
        Snapshot(int(b_minutes), float(mean), float(std), int(b_calls), int(b_errors)),
        {name: [(v, float(a)) for v, a in values] for name, values in tops.items()},
        int(n), int(calls), int(errors), dict(counts),
        [(int(c), int(e), dict(m)) for c, e, m in pending])
