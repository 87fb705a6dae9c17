"""The rolling baseline: exact window sums, implied zero minutes, skipped minutes, bounded
attribution counts."""

from __future__ import annotations

import statistics

from insight_traffic import MIN_MS

from pipeline.insights import InsightsConfig, MinuteStats
from pipeline.insights.baseline import Baseline, prune, top

CFG = InsightsConfig(baseline_ms=70 * MIN_MS, learn_ms=0)  # buckets of 10 minutes


def calls(n: int) -> MinuteStats:
    return MinuteStats(n, n // 3, {"arn": n}, {"ua": n}, {"null": n - n // 3, "Denied": n // 3})


def test_the_window_is_the_last_baseline_rounded_to_whole_buckets() -> None:
    baseline = Baseline(CFG, 0)
    for i in range(500):
        baseline.roll(i * MIN_MS)
        baseline.learn(i * MIN_MS, calls(i % 7), skip=False)
    baseline.roll(500 * MIN_MS)
    snap = baseline.snapshot(500 * MIN_MS)
    window = [i % 7 for i in range(430, 500)]  # buckets 43..49: (500 - 70) // 10 = 43
    assert snap.minutes == len(window)
    assert snap.mean == statistics.fmean(window)
    assert abs(snap.std - statistics.pstdev(window)) < 1e-9
    assert (snap.calls, snap.errors) == (sum(window), sum(n // 3 for n in window))
    assert sorted(baseline.indices()) == list(range(43, 50))


def test_idle_minutes_count_as_zeros_and_skipped_minutes_not_at_all() -> None:
    baseline = Baseline(CFG, 0)
    baseline.learn(0, calls(30), skip=False)
    baseline.learn(MIN_MS, calls(99), skip=True)
    baseline.roll(20 * MIN_MS)
    snap = baseline.snapshot(20 * MIN_MS)  # minutes 0..19: one of 30 calls, one skipped
    assert (snap.minutes, snap.calls) == (19, 30)
    assert snap.mean == 30 / 19
    assert top(baseline.counts(), "c", snap.minutes) == [("null", 20 / 19), ("Denied", 10 / 19)]


def test_attribution_counts_stay_bounded() -> None:
    counts = {f"a{i:04}": i for i in range(1000)} | {f"u{i}": 1 for i in range(3)}
    prune(counts, 50)
    assert sorted(k for k in counts if k[0] == "a") == [f"a{i:04}" for i in range(950, 1000)]
    assert sum(k[0] == "u" for k in counts) == 3
