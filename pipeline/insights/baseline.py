"""The rolling baseline of one (account, region, eventSource, eventName) key.

The baseline covers the last ``baseline_ms`` in buckets of ``baseline_ms / 7`` whole minutes (a
day by default), aligned to epoch multiples of the bucket width: bucket ``i`` holds the minutes
``[i * bucket_ms, (i + 1) * bucket_ms)``. At minute ``m`` the baseline is every bucket from
index ``(m - baseline_ms) // bucket_ms`` on, i.e. between ``baseline_ms`` and
``baseline_ms + bucket_ms`` of history (AWS likewise rounds its 7-day baseline to whole days).

A bucket holds integer sums only (so adding and removing buckets never drifts): ``skip`` (minutes
left out because an insight of the key was open), ``calls``, ``calls_sq`` (sum of squared calls
per minute), ``errors``, and attribution counts keyed ``<prefix><value>`` (see
:data:`PREFIXES`). Minutes without calls are not stored: a key's baseline minutes are the minutes
since it was first seen (or since the window start), minus the skipped ones, so a key idle for
weeks costs nothing and is summarised when next touched.

Attribution counts are bounded: once a bucket holds more than ``10 * keep`` values, each
attribute keeps its ``keep`` largest counts (ties by value) and the rest are dropped. The top 5
reported are therefore exact unless a key has more than ``keep`` values of an attribute with
similar counts in one bucket; a dropped value's later calls count from zero again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.insights.config import MINUTE_MS, InsightsConfig

PREFIXES = {"arn": "a", "ua": "u", "code": "c", "error_arn": "A", "error_ua": "U"}
"""Attribution count key prefixes: calls per userIdentityArn, userAgent and errorCode (``null``
for calls without an error, as AWS writes it), and erroring calls per userIdentityArn and
userAgent."""
NO_ERROR = "null"


@dataclass(frozen=True, slots=True)
class MinuteStats:
    """One closed 1-minute window of write management calls for one key. The mappings must not
    be changed after they are handed to the engine."""

    calls: int
    errors: int
    arns: Mapping[str, int]
    user_agents: Mapping[str, int]
    error_codes: Mapping[str, int]
    """errorCode -> calls, ``"null"`` for calls without one."""
    error_arns: Mapping[str, int] = field(default_factory=dict)
    """userIdentityArn -> calls with an errorCode (attributions of error-rate insights)."""
    error_user_agents: Mapping[str, int] = field(default_factory=dict)


ZERO = MinuteStats(0, 0, {}, {}, {})


def add_counts(counts: dict[str, int], stats: MinuteStats) -> None:
    """Add a minute's attribution counts into ``counts`` (prefixed keys)."""
    for prefix, mapping in (("a", stats.arns), ("u", stats.user_agents),
                            ("c", stats.error_codes), ("A", stats.error_arns),
                            ("U", stats.error_user_agents)):
        for value, n in mapping.items():
            key = prefix + value
            counts[key] = counts.get(key, 0) + n


def merge_counts(counts: dict[str, int], more: Mapping[str, int]) -> None:
    for key, n in more.items():
        counts[key] = counts.get(key, 0) + n


def prune(counts: dict[str, int], keep: int) -> None:
    """Bound ``counts``: beyond ``10 * keep`` entries keep the ``keep`` largest per prefix."""
    if len(counts) <= 10 * keep:
        return
    ranked = sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0]))
    kept: dict[str, int] = {}
    seen: dict[str, int] = {}
    for key, n in ranked:
        if seen.get(key[0], 0) < keep:
            seen[key[0]] = seen.get(key[0], 0) + 1
            kept[key] = n
    counts.clear()
    counts.update(kept)


def top(counts: Mapping[str, int], prefix: str, minutes: int, *, n: int = 5,
        exclude: str | None = None) -> list[tuple[str, float]]:
    """The ``n`` largest values of one attribute as ``(value, count / minutes)``, by count
    descending then value."""
    values = [(key[1:], c) for key, c in counts.items()
              if key[0] == prefix and key[1:] != exclude and c > 0]
    values.sort(key=lambda vc: (-vc[1], vc[0]))
    return [(value, c / minutes) for value, c in values[:n]] if minutes > 0 else []


@dataclass(slots=True)
class Bucket:
    skip: int = 0
    calls: int = 0
    calls_sq: int = 0
    errors: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The baseline as seen before minute ``m``: ``minutes`` learned (zero-call minutes
    included, insight minutes not), calls per minute (mean, population std) and error totals."""

    minutes: int
    mean: float
    std: float
    calls: int
    errors: int


class Baseline:
    """The buckets of one key. Minutes are added in ascending order; see the module docstring."""

    __slots__ = ("_baseline_ms", "_bucket_ms", "_calls", "_errors", "_keep", "_low", "_skip",
                 "_sq", "buckets", "first_ms")

    def __init__(self, cfg: InsightsConfig, first_ms: int) -> None:
        self._baseline_ms, self._bucket_ms = cfg.baseline_ms, cfg.bucket_ms
        self._keep = cfg.attribution_keep
        self.first_ms = first_ms
        self.buckets: dict[int, Bucket] = {}
        self._low = -(1 << 62)  # every bucket index below this is gone
        self._skip = self._calls = self._sq = self._errors = 0

    def roll(self, minute_ms: int) -> list[int]:
        """Drop the buckets that left the window at ``minute_ms``; returns their indices."""
        low = (minute_ms - self._baseline_ms) // self._bucket_ms
        if low <= self._low:
            return []
        self._low = low
        gone = sorted(i for i in self.buckets if i < low)
        for i in gone:
            self._account(self.buckets.pop(i), -1)
        return gone

    def snapshot(self, minute_ms: int) -> Snapshot:
        """Call ``roll(minute_ms)`` first."""
        start = max(self.first_ms, self._low * self._bucket_ms)
        minutes = max(0, (minute_ms - start) // MINUTE_MS - self._skip)
        if minutes == 0:
            return Snapshot(0, 0.0, 0.0, 0, 0)
        mean = self._calls / minutes
        var = max(0.0, self._sq / minutes - mean * mean)
        return Snapshot(minutes, mean, math.sqrt(var), self._calls, self._errors)

    def learn(self, minute_ms: int, stats: MinuteStats, *, skip: bool) -> int:
        """Add one minute (or, when ``skip``, only count it as left out); returns its bucket."""
        index = minute_ms // self._bucket_ms
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = Bucket()
        if skip:
            bucket.skip += 1
            self._skip += 1
            return index
        c = stats.calls
        bucket.calls += c
        bucket.calls_sq += c * c
        bucket.errors += stats.errors
        self._calls += c
        self._sq += c * c
        self._errors += stats.errors
        add_counts(bucket.counts, stats)
        prune(bucket.counts, self._keep)
        return index

    def put(self, index: int, bucket: Bucket) -> None:
        """Set (restore) one bucket, replacing any held under ``index``."""
        self.drop(index)
        self.buckets[index] = bucket
        self._account(bucket, 1)

    def drop(self, index: int) -> None:
        """Forget one bucket (a restored tombstone)."""
        old = self.buckets.pop(index, None)
        if old is not None:
            self._account(old, -1)

    def counts(self) -> dict[str, int]:
        """Attribution counts over the window (call ``roll`` first)."""
        total: dict[str, int] = {}
        for bucket in self.buckets.values():
            merge_counts(total, bucket.counts)
        return total

    def indices(self) -> Iterable[int]:
        return self.buckets.keys()

    def _account(self, bucket: Bucket, sign: int) -> None:
        self._skip += sign * bucket.skip
        self._calls += sign * bucket.calls
        self._sq += sign * bucket.calls_sq
        self._errors += sign * bucket.errors
