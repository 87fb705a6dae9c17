"""Self-hosted CloudTrail Insights: the statistical tests and the life of one insight.

**What is measured.** Per (account, region, eventSource, eventName) key, the write management
calls of every closed minute (event time): ``calls``, ``errors`` (calls with an errorCode). The
baseline (:mod:`pipeline.insights.baseline`) is the last ``baseline_ms`` (7 days) of minutes,
zero-call minutes included, minutes inside an open insight of the key excluded (so a long spike
never becomes normal; the minutes that confirm an insight's end are excluded too). No insight
can start before a key has ``learn_period_ms`` of history.

**API call rate** (``ApiCallRateInsight``). With the baseline's mean ``mu`` and population
standard deviation ``sd`` of calls per minute, a minute with ``c`` calls is anomalous when all of

1. ``c >= min_calls`` (10);
2. ``c > mu + z * max(sd, sqrt(mu), std_floor)`` (z = 6, floor 1): a z-sigma departure, where
   ``sqrt(mu)`` (the Poisson deviation) and the floor stop a near-constant or near-zero
   baseline from firing on a handful of calls; ``sd`` above ``sqrt(mu)`` (bursty traffic,
   daily cycles) raises the bar accordingly;
3. ``P(X >= c) < Q(z)`` for ``X ~ Poisson(mu)``, where ``Q(z)`` is the normal upper tail
   (``Q(6)`` ~ 1e-9): counts are discrete and skewed at small means, where a z-score alone
   fires far too often (mean 1: ``P(X >= 8)`` ~ 1e-5). The tail uses a geometric upper bound,
   so the test errs towards "normal".

**API error rate** (``ApiErrorRateInsight``). With the baseline error rate
``p0 = (errors + 1) / (calls + 2)`` (add-one smoothing: a baseline that happened to see no error
is not certain that errors are impossible; a key without baseline calls has p0 = 1/2 and so no
error-rate insight), a minute with ``e`` errors in ``n`` calls is anomalous when all of
``e >= min_errors`` (5), ``e/n - p0 >= min_rate_delta`` (0.1), the binomial z-score
``(e - n p0) / sqrt(n p0 (1 - p0) + 1e-9) > error_z`` (6), and the exact binomial tail
``P(E >= e) < Q(error_z)`` (the normal approximation is poor for small ``n p0``).

**Why these defaults never fire on steady traffic.** For Poisson call counts and binomial errors
the tail conditions alone bound the false-alarm rate at ~1e-9 per key-minute: a week of 1,000
busy keys (1e7 key-minutes) expects 0.01 false insights, at any rate from 1 to 200 events/s (the
rate only moves keys along the mean axis; the bound holds at every mean). The minimum counts
keep an insight meaningful (10 calls, 5 errors in a minute) when the baseline is near zero.
What a minute needs to start an insight with the defaults, for a Poisson baseline of mean mu:
mu 0 -> 10 calls, 1 -> 12, 5 -> 24, 20 -> 53, 100 -> 167, 1000 -> 1197; and at a baseline
error rate of 2%: 7 errors of 10 calls, 9 of 20, 12 of 50, 25 of 200, 121 of 1000.

**Life of an insight.** An insight starts at the first anomalous minute (Start event, eventTime =
that minute) and stays open while minutes are anomalous; after ``end_after_minutes`` (3)
consecutive normal minutes it ends at the first of them (End event, eventTime = that minute,
emitted when the last of them closes). ``insightDuration`` = minutes from start to end; normal
minutes between anomalous ones count in it. The baseline statistics and attributions are frozen
at the start (AWS: the baseline ends where the insight starts).

**Statistics in the events** follow AWS's documented meanings: averages are per minute (calls
per minute for call-rate insights, errors per minute for error-rate insights), durations in
minutes; ``insight.average`` is over the start minute for Start and over the whole insight for
End. Attributions (top 5 ``userIdentityArn``, ``userAgent``, ``errorCode``, average = count /
minutes) count calls for call-rate insights (``errorCode`` ``null`` for calls without one) and
erroring calls for error-rate insights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.insights.baseline import NO_ERROR, MinuteStats, Snapshot, add_counts, prune, top
from pipeline.insights.config import MINUTE_MS, InsightsConfig
from pipeline.insights.event import CALL_RATE, ERROR_RATE, Attribution, Statistics

_EPS = 1e-9
_ATTRIBUTES = {CALL_RATE: (("userIdentityArn", "a"), ("userAgent", "u"), ("errorCode", "c")),
               ERROR_RATE: (("userIdentityArn", "A"), ("userAgent", "U"), ("errorCode", "c"))}


def normal_tail(z: float) -> float:
    """``P(Z > z)`` for a standard normal ``Z``."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def poisson_tail(k: int, mean: float) -> float:
    """An upper bound on ``P(X >= k)``, ``X ~ Poisson(mean)`` (exact to a few % when ``k`` is
    well above the mean; 1.0 when ``k`` is not above it)."""
    if k <= 0:
        return 1.0
    if mean <= 0.0:
        return 0.0
    ratio = mean / (k + 1)
    if ratio >= 1.0:
        return 1.0
    log_term = -mean + k * math.log(mean) - math.lgamma(k + 1)
    return min(1.0, math.exp(log_term) / (1.0 - ratio))


def binomial_tail(e: int, n: int, p: float) -> float:
    """An upper bound on ``P(E >= e)``, ``E ~ Binomial(n, p)``, 0 < p < 1, 0 < e <= n."""
    ratio = (n - e) / (e + 1) * p / (1.0 - p)
    if ratio >= 1.0:
        return 1.0
    log_term = (math.lgamma(n + 1) - math.lgamma(e + 1) - math.lgamma(n - e + 1)
                + e * math.log(p) + (n - e) * math.log1p(-p))
    return min(1.0, math.exp(log_term) / (1.0 - ratio))


def error_baseline(snap: Snapshot) -> float:
    """The smoothed baseline error rate the error test compares with."""
    return (snap.errors + 1) / (snap.calls + 2)


def call_rate_anomalous(calls: int, snap: Snapshot, cfg: InsightsConfig) -> bool:
    """The call-rate test of the module docstring."""
    if calls < cfg.min_calls:
        return False
    spread = max(snap.std, math.sqrt(snap.mean), cfg.std_floor)
    if calls <= snap.mean + cfg.z * spread:
        return False
    return poisson_tail(calls, snap.mean) < normal_tail(cfg.z)


def error_rate_anomalous(errors: int, calls: int, snap: Snapshot, cfg: InsightsConfig) -> bool:
    """The error-rate test of the module docstring."""
    if errors < cfg.min_errors or calls <= 0 or errors > calls:
        return False
    p0 = error_baseline(snap)
    if errors / calls - p0 < cfg.min_rate_delta:
        return False
    z = (errors - calls * p0) / math.sqrt(calls * p0 * (1.0 - p0) + _EPS)
    if z <= cfg.error_z:
        return False
    return binomial_tail(errors, calls, p0) < normal_tail(cfg.error_z)


def anomalous(kind: str, stats: MinuteStats, snap: Snapshot, cfg: InsightsConfig) -> bool:
    if kind == CALL_RATE:
        return call_rate_anomalous(stats.calls, snap, cfg)
    return error_rate_anomalous(stats.errors, stats.calls, snap, cfg)


Pending = tuple[int, int, dict[str, int]]
"""A normal minute inside an open insight: calls, errors, attribution counts."""


@dataclass(slots=True)
class OpenInsight:
    """One insight from its Start to its End. ``baseline`` is the key's baseline frozen at the
    start (every minute of the insight is tested against it, so a spike longer than the
    baseline period is still judged against normal traffic); ``baseline_top`` maps an attribute
    name to its frozen baseline top 5; ``minutes``/``calls``/``errors``/``counts`` cover the
    insight's minutes so far; ``pending`` the normal minutes since the last anomalous one."""

    kind: str
    start_ms: int
    baseline: Snapshot
    baseline_top: dict[str, list[tuple[str, float]]]
    minutes: int = 0
    calls: int = 0
    errors: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)

    @classmethod
    def begin(cls, kind: str, minute_ms: int, snap: Snapshot,
              baseline_counts: dict[str, int]) -> OpenInsight:
        """An insight of ``kind`` starting at ``minute_ms`` against ``snap``."""
        tops = {name: top(baseline_counts, prefix, snap.minutes, exclude=_excluded(kind, name))
                for name, prefix in _ATTRIBUTES[kind]}
        return cls(kind, minute_ms, snap, tops)

    def observe(self, stats: MinuteStats, cfg: InsightsConfig) -> bool:
        """Account one minute (tested against the frozen baseline); True when the insight has
        now ended."""
        is_anomalous = anomalous(self.kind, stats, self.baseline, cfg)
        counts: dict[str, int] = {}
        add_counts(counts, stats)
        minute = (stats.calls, stats.errors, counts)
        if not is_anomalous:
            self.pending.append(minute)
            return len(self.pending) >= cfg.end_after_minutes
        for earlier in (*self.pending, minute):
            self.minutes += 1
            self.calls += earlier[0]
            self.errors += earlier[1]
            for key, n in earlier[2].items():
                self.counts[key] = self.counts.get(key, 0) + n
        self.pending.clear()
        prune(self.counts, cfg.attribution_keep)
        return False

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.minutes * MINUTE_MS

    def statistics(self) -> Statistics:
        base = self.baseline
        total, base_total = ((self.calls, base.calls) if self.kind == CALL_RATE
                             else (self.errors, base.errors))
        return Statistics(base_total / base.minutes, total / max(self.minutes, 1),
                          self.minutes, base.minutes)

    def attributions(self) -> list[Attribution]:
        return [Attribution(name, top(self.counts, prefix, self.minutes,
                                      exclude=_excluded(self.kind, name)),
                            self.baseline_top.get(name, []))
                for name, prefix in _ATTRIBUTES[self.kind]]


def _excluded(kind: str, attribute: str) -> str | None:
    """Error-rate insights attribute errors, so calls without an errorCode are left out."""
    return NO_ERROR if kind == ERROR_RATE and attribute == "errorCode" else None
