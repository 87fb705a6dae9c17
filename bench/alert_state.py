"""The ``alert`` scenario's state phase: what 1M distinct correlation group keys cost.

In this process: one :class:`~pipeline.rules.state.stage.Stage` with a single ``event_count``
correlation (group-by ``userIdentity.arn``, 1 h timespan, ``gte 10``, so no group fires or
expires during the run) gets STATE_KEYS hits with distinct group keys, one ms of event time
apart, in batches as the alerter feeds it (observe each hit, then ``flush_updates`` and
``changes``, the changelog records being built and dropped). Each hit's strings are fresh
objects, as hits parsed from the hits topic are. The cost is the process's resident set
growth (``VmRSS``, after a full collection, with tracemalloc off: it would inflate it), so
allocator overhead and fragmentation count; the Stage's own count of keys confirms that
every key is held (none evicted).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

from bench.archive_drain import _r
from bench.common import BenchError
from bench.results import ScenarioResult
from pipeline.rules.model import CorrelationSpec, Hit, RuleMeta
from pipeline.rules.state.stage import Stage

STATE_KEYS = 1_000_000
BATCH = 10_000
TARGET_STATE_MIB = 1024
START_MS = 1_764_000_000_000
RULE_ID, CORRELATION_ID = "bench.state.rule", "bench.state.correlation"
MIB = 1024 * 1024


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError("no VmRSS in /proc/self/status")


def _stage() -> Stage:
    rule = RuleMeta(id=RULE_ID, title="bench rule", severity="low", source="bench")
    spec = CorrelationSpec(
        meta=RuleMeta(id=CORRELATION_ID, title="bench correlation", severity="high",
                      source="bench"),
        kind="event_count", rules=(RULE_ID,), group_by=("userIdentity.arn",),
        fields={RULE_ID: {"userIdentity.arn": "userIdentity.arn"}}, timespan_ms=3_600_000,
        condition={"gte": 10})
    return Stage({RULE_ID: rule}, {CORRELATION_ID: spec}, grace_ms=15 * 60_000,
                 max_keys=STATE_KEYS + 1, sample_size=10)


def _hit(i: int) -> Hit:
    principal = f"arn:aws:iam::{i % 1000:012d}:user/bench-user-{i:07d}"
    return Hit(kind="correlation", target=CORRELATION_ID, key=principal, rule_id=RULE_ID,
               event_time_ms=START_MS + i, event_id=f"{i:08x}-0000-4000-8000-{i:012x}",
               account=f"{i % 1000:012d}", region="eu-west-1", principal=principal,
               source_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")


def _feed(stage: Stage, keys: int) -> None:
    for start in range(0, keys, BATCH):
        for i in range(start, min(start + BATCH, keys)):
            if stage.observe(_hit(i)):
                raise BenchError("a correlation fired: the state phase expects none")
        stage.flush_updates()
        stage.changes()


def measure(say: Callable[[str], None], keys: int = STATE_KEYS) -> ScenarioResult:
    """RSS growth of one Stage holding ``keys`` distinct group keys; scaled to 1M keys."""
    say(f"  state: {keys:,} distinct correlation group keys in one Stage")
    gc.collect()
    before = _rss_bytes()
    stage = _stage()
    _feed(stage, keys)
    gc.collect()
    grown = _rss_bytes() - before
    stats = stage.stats()
    if stats["correlation_groups"] != keys or stats["evicted"] or stats["expired"]:
        raise BenchError(f"the Stage does not hold {keys} keys: {stats}")
    per_key = grown / keys
    per_1m_mib = per_key * 1_000_000 / MIB
    return {
        "state_group_keys": keys, "state_rss_delta_mib": _r(grown / MIB),
        "state_bytes_per_key": _r(per_key), "state_1m_keys_mib": _r(per_1m_mib),
        "target_state_1m_keys_mib": TARGET_STATE_MIB,
        "met_state_1m_keys_mib": per_1m_mib <= TARGET_STATE_MIB,
    }
