"""Deterministic synthetic CloudTrail traffic, with optional injected attack scenarios.

Pure: no I/O, no wall clock, no global random state. ``Generator(seed, ...).records(n)`` is a
function of its arguments only, so demos, tests and benchmarks can replay the exact stream.

Benign traffic: several accounts (12-digit ids derived from the seed) and real region names;
callers are IAM users, assumed roles (SSO, workloads, CI), a federated user, AWS services and,
rarely, the root user (console, with MFA). About 80% of calls are read-only; ``error_rate`` of
them fail with a realistic errorCode (mostly authorization failures). Event time starts at
``start_ms`` and advances by exponential gaps averaging ``1/events_per_second``.

Scenarios (see :mod:`producers.generator.scenarios`) are injected once per ``scenario_every``
records (and once in a shorter finite run) at seeded positions, interleaved with benign records.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Any

from producers.generator.base import REGIONS, Principal
from producers.generator.catalog import (
    HUMAN_READS,
    HUMAN_WRITES,
    ROOT_READS,
    ROOT_WRITES,
    SERVICE_READS,
    SERVICE_WRITES,
    Api,
    error_for,
)
from producers.generator.record import Account, Env, Step, build_world
from producers.generator.scenarios import SCENARIOS, mark, resolve

__all__ = ["SCENARIOS", "Generator"]

READ_SHARE = 0.8
"""Fraction of benign calls that are read-only."""
SPAN_GAP_CAP_MS = 500
"""Inside a scenario's span consecutive records are at most this far apart, so even at a slow
pace a scenario (e.g. the 25-call access-denied burst) happens within one minute."""

_Table = tuple[tuple[Api, ...], list[float]]
_Plan = dict[int, tuple[str, Step] | None]


def _table(apis: tuple[Api, ...]) -> _Table:
    return apis, list(itertools.accumulate(a.weight for a in apis))


_HUMAN = (_table(HUMAN_READS), _table(HUMAN_WRITES))
_TABLES = {"Root": (_table(ROOT_READS), _table(ROOT_WRITES)),
           "AWSService": (_table(SERVICE_READS), _table(SERVICE_WRITES))}


class Generator:
    """A seeded source of CloudTrail-shaped records (plain JSON-compatible dicts).

    ``accounts`` >= 1; 1 <= ``regions`` <= len(REGIONS) (``us-east-1`` is always included);
    0 <= ``error_rate`` <= 1; ``scenarios`` are names from :data:`SCENARIOS` (repeats inject
    more than once; unknown names raise ValueError listing the valid ones).
    """

    def __init__(self, seed: int, accounts: int = 3, regions: int = 2, *, start_ms: int,
                 error_rate: float = 0.02, scenarios: Sequence[str] = (),
                 events_per_second: float = 20.0, scenario_every: int = 10_000) -> None:
        if accounts < 1:
            raise ValueError("accounts must be >= 1")
        if not 1 <= regions <= len(REGIONS):
            raise ValueError(f"regions must be between 1 and {len(REGIONS)}")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        if start_ms < 0 or events_per_second <= 0:
            raise ValueError("start_ms must be >= 0 and events_per_second > 0")
        self._scenarios = resolve(scenarios)
        self._need = sum(s.max_span for s in self._scenarios)
        if scenario_every < max(self._need, 1):
            raise ValueError(f"scenario_every must be >= {max(self._need, 1)} for these scenarios")
        self._seed, self._start_ms, self._error_rate = seed, start_ms, error_rate
        self._mean_gap_ms, self._every = 1000.0 / events_per_second, scenario_every
        world = random.Random(seed)
        self._accounts = build_world(world, accounts)
        self._regions = ("us-east-1", *world.sample(REGIONS[1:], regions - 1))
        weighted = [pw for a in self._accounts for pw in a.principals]
        self._principals = [p for p, _ in weighted]
        self._cum = list(itertools.accumulate(w for _, w in weighted))
        self._res = {a.id: a.res for a in self._accounts}

    @property
    def seed(self) -> int:
        """The seed every random choice of this generator derives from."""
        return self._seed

    @property
    def start_ms(self) -> int:
        """Event time of the first record (epoch ms)."""
        return self._start_ms

    @property
    def world(self) -> tuple[Account, ...]:
        """The simulated accounts with their callers and resources (for traffic shapes)."""
        return self._accounts

    @property
    def account_ids(self) -> tuple[str, ...]:
        """The simulated accounts' 12-digit ids (derived from the seed)."""
        return tuple(a.id for a in self._accounts)

    @property
    def region_names(self) -> tuple[str, ...]:
        """The AWS regions traffic is spread over (derived from the seed)."""
        return self._regions

    def records(self, count: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield ``count`` records (forever when None), the same sequence on every call.

        eventTime never decreases. With scenarios, every complete ``scenario_every`` block
        (or the whole run, when ``count`` is smaller) contains each scenario once; a trailing
        block too short to hold them all gets none. ValueError if ``count`` < 0, or if
        scenarios were requested and ``count`` cannot hold them.
        """
        if count is not None and count < 0:
            raise ValueError("count must be >= 0")
        if count is not None and self._scenarios and count < self._need:
            raise ValueError(f"count must be >= {self._need} to inject the scenarios")
        return self._run(count)

    def _run(self, count: int | None) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"trailpipe-traffic:{self._seed}")
        env = Env(rng, self._accounts, self._regions)
        now, rate = self._start_ms, 1.0 / self._mean_gap_ms
        plan: _Plan = {}
        block_end = i = 0
        while count is None or i < count:
            if i == block_end:
                length = self._every if count is None else min(self._every, count - i)
                plan, block_end = self._plan(env, i, length), i + length
            entry = plan.get(i)
            if i:
                gap = rng.expovariate(rate)
                now += int(min(gap, SPAN_GAP_CAP_MS) if i in plan else gap)
            if entry is not None:
                name, step = entry
                yield mark(step(now), name)
            else:
                yield self._benign(env, now)
            i += 1

    def _plan(self, env: Env, start: int, length: int) -> _Plan:
        """Place every scenario once within ``[start, start+length)`` without overlaps.

        Maps an absolute position to ``(scenario, step)``, or to None for a benign record
        interleaved inside a scenario's span."""
        if not self._scenarios or length < self._need:
            return {}
        rng = env.rng
        order = list(self._scenarios)
        rng.shuffle(order)
        built = []
        for sc in order:
            steps = sc.build(env)
            built.append((sc.name, steps, [rng.randint(0, sc.max_gap) for _ in steps[1:]]))
        spans = [len(steps) + sum(gaps) for _, steps, gaps in built]
        cuts = sorted(rng.randint(0, length - sum(spans)) for _ in built)
        plan: _Plan = {}
        offset = start
        for (name, steps, gaps), span, cut in zip(built, spans, cuts, strict=True):
            pos = offset + cut
            for step, gap in zip(steps, [*gaps, 0], strict=True):
                plan[pos] = (name, step)
                plan.update(dict.fromkeys(range(pos + 1, pos + 1 + gap)))
                pos += gap + 1
            offset += span
        return plan

    def _benign(self, env: Env, now: int) -> dict[str, Any]:
        """One benign call: weighted caller, 80/20 read/write, weighted API, maybe an error."""
        rng = env.rng
        p: Principal = self._principals[bisect.bisect(self._cum, rng.random() * self._cum[-1])]
        reads, writes = _TABLES.get(p.kind, _HUMAN)
        apis, cum = reads if rng.random() < READ_SHARE else writes
        api = apis[bisect.bisect(cum, rng.random() * cum[-1])]
        region = env.region(api)
        params = api.build(rng, self._res[p.account], region, p, now)
        error = None
        if rng.random() < self._error_rate and api.event_type != "AwsServiceEvent":
            error = error_for(rng, api, p)
        return env.record(p, api, now, region, params, error)
