"""Synthetic per-minute traffic for the Insights tests: Poisson call counts split over callers."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

from pipeline.insights import InsightEngine, InsightKey, MinuteStats

MIN_MS = 60_000
T0_MS = 1_700_000_040_000  # a whole minute
KEY: InsightKey = ("111122223333", "us-east-1", "ec2.amazonaws.com", "RunInstances")


@dataclass(frozen=True)
class Caller:
    arn: str
    user_agent: str
    weight: float = 1.0
    error_rate: float = 0.0
    error_code: str = "Client.UnauthorizedOperation"


BACKGROUND = (Caller("arn:aws:sts::111122223333:assumed-role/ci/build", "terraform/1.7", 3.0,
                     0.02),
              Caller("arn:aws:iam::111122223333:user/alice", "aws-cli/2.15", 1.0, 0.05,
                     "InvalidParameterValue"),
              Caller("arn:aws:sts::111122223333:assumed-role/asg/svc", "autoscaling.amazonaws.com",
                     2.0))


def poisson(rng: random.Random, mean: float) -> int:
    """An exact Poisson draw (Knuth's method, in pieces of mean <= 20)."""
    total, rest = 0, mean
    while rest > 0:
        piece = min(rest, 20.0)
        rest -= piece
        limit, p = math.exp(-piece), rng.random()
        while p > limit:
            total += 1
            p *= rng.random()
    return total


def minute(rng: random.Random, calls: int, callers: tuple[Caller, ...]) -> MinuteStats:
    """``calls`` calls shared out over ``callers`` by weight, each failing at its error rate."""
    arns: Counter[str] = Counter()
    agents: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    error_arns: Counter[str] = Counter()
    error_agents: Counter[str] = Counter()
    chosen = rng.choices(callers, weights=[c.weight for c in callers], k=calls)
    for c in chosen:
        arns[c.arn] += 1
        agents[c.user_agent] += 1
        failed = rng.random() < c.error_rate
        codes[c.error_code if failed else "null"] += 1
        if failed:
            error_arns[c.arn] += 1
            error_agents[c.user_agent] += 1
    return MinuteStats(calls, sum(error_arns.values()), dict(arns), dict(agents), dict(codes),
                       dict(error_arns), dict(error_agents))


def run(engine: InsightEngine, minutes: range,
        traffic: dict[InsightKey, list[MinuteStats | None]]) -> list[dict[str, object]]:
    """Close ``minutes`` (offsets from T0_MS) in order; ``traffic[key][i]`` is minute i's stats
    (None or a zero-call minute: the key is left out, as the aggregator does)."""
    events: list[dict[str, object]] = []
    for i in minutes:
        stats = {k: s[i] for k, s in traffic.items() if s[i] is not None and s[i].calls}
        events += engine.close_minute(T0_MS + i * MIN_MS, stats)
    return events
