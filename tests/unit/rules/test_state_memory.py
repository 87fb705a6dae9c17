"""Correlation state is small: 1M distinct group keys (one hit each) fit in 1 GiB.

Measured in a fresh interpreter (so memory freed by other tests cannot hide any): the peak
resident size while a stage takes 1M event_count hits, each of its own group key, minus the
resident size before, processed in batches as the alerter does (observe, flush_updates,
changes). The hits' strings are distinct per key, as from a real stream, and the stage
keeps what it needs of them. (tracemalloc would be exact but makes this ten times slower.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

GIB = 1 << 30
REPO = Path(__file__).resolve().parents[3]

MEASURE = """
import gc, json, resource
from pipeline.rules.model import CorrelationSpec, Hit, RuleMeta
from pipeline.rules.state import Stage

def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()

KEYS, T0_MS = 1_000_000, 1_700_000_000_000
meta = RuleMeta(id="a7c3e0f4-5b8e-4c1a-9d6f-0e2b1c3d4e5f", title="Access denied burst",
                severity="medium", source="sigma:denied_burst.yml")
counting = CorrelationSpec(meta=meta, kind="event_count", rules=("denied",),
                           group_by=("userIdentity.arn",), fields={}, timespan_ms=3_600_000,
                           condition={"gte": 5})
stage = Stage({}, {meta.id: counting}, grace_ms=300_000, max_keys=2 * KEYS, sample_size=10)
gc.collect()
before = rss_bytes()
for n in range(KEYS):
    principal = f"arn:aws:iam::{n % 1000:012d}:user/person-{n:07d}"
    stage.observe(Hit(
        kind="correlation", target=meta.id, key=principal, rule_id="denied",
        event_time_ms=T0_MS + n, event_id=f"{n:08x}-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        account=f"{n % 1000:012d}", region="eu-west-1", principal=principal,
        source_ip=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"))
    if n % 1000 == 999:
        stage.flush_updates()
        stage.changes()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"groups": stage.stats()["correlation_groups"], "before": before,
                  "peak": peak, "held": rss_bytes()}))
"""


def test_a_million_group_keys_fit_in_one_gib() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", MEASURE], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    elapsed_s = time.monotonic() - started
    measured = json.loads(done.stdout)
    grown_bytes = measured["peak"] - measured["before"]
    print(f"1M keys: peak +{grown_bytes / 2**20:.0f} MiB, "
          f"held +{(measured['held'] - measured['before']) / 2**20:.0f} MiB, {elapsed_s:.1f} s")
    assert measured["groups"] == 1_000_000
    assert 0 < grown_bytes <= GIB
    assert elapsed_s < 60
