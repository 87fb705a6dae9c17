"""The statistical tests: tail bounds against exact sums, and the documented decisions."""

from __future__ import annotations

import math

import pytest

from pipeline.insights import InsightsConfig
from pipeline.insights.baseline import Snapshot
from pipeline.insights.detector import (
    binomial_tail,
    call_rate_anomalous,
    error_rate_anomalous,
    normal_tail,
    poisson_tail,
)

CFG = InsightsConfig()


def exact_poisson_tail(k: int, mean: float) -> float:
    """The sum of the pmf from k on (400 terms: the rest is far below float precision)."""
    return math.fsum(math.exp(-mean + i * math.log(mean) - math.lgamma(i + 1))
                     for i in range(k, k + 400))


def exact_binomial_tail(e: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(e, n + 1))


@pytest.mark.parametrize(("k", "mean"), [(8, 1.0), (13, 1.0), (40, 10.0), (170, 100.0)])
def test_poisson_tail_is_a_tight_upper_bound(k: int, mean: float) -> None:
    exact = exact_poisson_tail(k, mean)
    assert exact <= poisson_tail(k, mean) <= exact * 1.2


@pytest.mark.parametrize(("e", "n", "p"), [(5, 20, 0.02), (10, 20, 0.05), (30, 100, 0.1)])
def test_binomial_tail_is_a_tight_upper_bound(e: int, n: int, p: float) -> None:
    exact = exact_binomial_tail(e, n, p)
    assert exact <= binomial_tail(e, n, p) <= exact * 1.2


def test_tails_at_the_edges() -> None:
    assert poisson_tail(0, 5.0) == 1.0
    assert poisson_tail(3, 0.0) == 0.0
    assert poisson_tail(4, 10.0) == 1.0  # not above the mean: no claim
    assert normal_tail(0.0) == pytest.approx(0.5)


def snap(mean: float, std: float | None = None, minutes: int = 10_080,
         error_rate: float = 0.0) -> Snapshot:
    calls = round(mean * minutes)
    return Snapshot(minutes, mean, math.sqrt(mean) if std is None else std, calls,
                    round(calls * error_rate))


def test_call_rate_test_on_a_near_zero_baseline() -> None:
    quiet = snap(0.001)
    assert not call_rate_anomalous(2, quiet, CFG)
    assert not call_rate_anomalous(CFG.min_calls - 1, quiet, CFG)
    assert call_rate_anomalous(CFG.min_calls, quiet, CFG)


def test_call_rate_test_needs_the_poisson_tail_at_small_means() -> None:
    """Mean 1: 8 calls is a 7-sigma z-score, but P(X >= 8) ~ 1e-5; 15 calls is rare enough."""
    base = snap(1.0)
    assert base.mean + CFG.z * base.std < 8
    assert not call_rate_anomalous(max(8, CFG.min_calls), base, CFG)
    assert call_rate_anomalous(15, base, CFG)


def test_call_rate_test_respects_bursty_baselines() -> None:
    """A baseline with sd 30 around 100 (daily cycles) needs more than the Poisson sd 10 would."""
    assert call_rate_anomalous(200, snap(100.0), CFG)
    assert not call_rate_anomalous(200, snap(100.0, std=30.0), CFG)
    assert call_rate_anomalous(300, snap(100.0, std=30.0), CFG)


def test_error_rate_test() -> None:
    base = snap(20.0, error_rate=0.02)
    assert error_rate_anomalous(12, 20, base, CFG)
    assert not error_rate_anomalous(3, 20, base, CFG)  # 15%, but P(E >= 3) ~ 0.008
    assert not error_rate_anomalous(CFG.min_errors - 1, CFG.min_errors - 1, base, CFG)
    assert not error_rate_anomalous(120, 1000, base, CFG)  # 12% is far off, but < 10 points up
    assert error_rate_anomalous(130, 1000, base, CFG)
    assert not error_rate_anomalous(5, 0, base, CFG)


def test_error_rate_test_without_a_baseline_of_calls() -> None:
    """Add-one smoothing: no baseline calls means p0 = 1/2, so no error-rate insight."""
    empty = Snapshot(10_080, 0.0, 0.0, 0, 0)
    assert not error_rate_anomalous(10, 10, empty, CFG)
